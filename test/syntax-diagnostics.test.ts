// Syntax diagnostics written as annotated source (`^^^ CODE message` under the offending text), plus recovery, soft keywords and precedence.
import { describe, expect, it } from 'vitest';
import type * as A from '../grammar/ast.ts';
import { parse } from '../grammar/parse.ts';
import { checkSource } from '../compiler/frontend/check.ts';

/**
 * Splits annotated source into the source and its expected diagnostics. A line of carets followed by
 * a code and a message fragment marks the characters above it (the nearest source line):
 *
 *     let s = "a\qb"
 *               ^^ E0004 invalid escape
 *
 * A `|` instead of carets marks an empty span at that column. Every diagnostic must be marked,
 * cascades included; marker lines are not part of the source.
 */
function annotated(text: string): { source: string; expected: { code: string; start: number; end: number; message: string }[] } {
  const lines = text.replace(/^\n/, '').split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)![0].length));
  const sourceLines: string[] = [];
  const expected: { code: string; start: number; end: number; message: string }[] = [];
  let offset = 0;
  let lastLineStart = 0;
  for (const raw of lines) {
    const line = raw.slice(indent);
    const marker = /^(\s*)(\^+|\|)\s+(E\d{4})\s*(.*)$/.exec(line);
    if (marker) {
      const start = lastLineStart + marker[1].length;
      expected.push({ code: marker[3], start, end: marker[2] === '|' ? start : start + marker[2].length, message: marker[4] });
      continue;
    }
    sourceLines.push(line);
    lastLineStart = offset;
    offset += line.length + 1;
  }
  expected.sort((a, b) => a.start - b.start);
  return { source: sourceLines.join('\n'), expected };
}

function expectDiagnostics(text: string): A.Program {
  const { source, expected } = annotated(text);
  const { program, diagnostics } = parse(source, 'test.dl');
  const actual = diagnostics.map((d) => ({ code: d.code, start: d.span.start, end: d.span.end, text: source.slice(d.span.start, d.span.end), message: d.message }));
  expect(actual.map(({ code, start, end, text }) => ({ code, start, end, text }))).toEqual(
    expected.map(({ code, start, end }) => ({ code, start, end, text: source.slice(start, end) })),
  );
  actual.forEach((d, i) => expect(d.message).toContain(expected[i].message));
  return program;
}

function clean(source: string): A.Program {
  const { program, diagnostics } = parse(source, 'test.dl');
  expect(diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual([]);
  return program;
}

/** The tree shape of an expression as an S-expression: `(- (** x 2))`. */
function shape(e: A.Expr): string {
  switch (e.kind) {
    case 'Binary':
      return `(${e.op} ${shape(e.left)} ${shape(e.right)})`;
    case 'Unary':
      return `(${e.op} ${shape(e.operand)})`;
    case 'Ident':
      return e.name;
    case 'Number':
      return e.text;
    case 'Call':
      return `(call ${shape(e.callee)}${e.args.map((a) => ` ${a.name ? `${a.name.text}:` : ''}${shape(a.value)}`).join('')})`;
    case 'Index':
      return `(index ${shape(e.target)} ${e.items.map((i) => (i.kind === 'Slice' ? 'slice' : shape(i))).join(' ')})`;
    case 'Member':
      return `(. ${shape(e.target)} ${e.member.text})`;
    default:
      return e.kind;
  }
}

function letValue(source: string): string {
  const decl = clean(`let v = ${source}\n`).body.stmts[0];
  if (decl.kind !== 'Let') throw new Error(`expected a let, got ${decl.kind}`);
  return shape(decl.value);
}

// ------------------------------------------------------------------ the table

describe('lexical errors', () => {
  it('E0001 unexpected character', () => {
    expectDiagnostics(`
      let a = 1 § 2
                ^ E0001 unexpected character \`§\`
                  ^ E0010 expected the end of the declaration
    `);
    expectDiagnostics(`
      let a = x $$
                ^^ E0001 unexpected characters \`$$\`
    `);
  });

  it('E0001 a non-ASCII letter in a name: one error per name, and the name still resolves', () => {
    expectDiagnostics(`
      let héllo = 1
           ^ E0001 unexpected character \`é\` in the name \`héllo\`
      let 日本 = héllo_wörld + x2é
          ^^ E0001 unexpected characters \`日本\`: a name cannot have them
                ^^^^^^^ E0001 unexpected characters \`éö\` in the name \`héllo_wörld\`
                               ^ E0001 unexpected character \`é\` in the name \`x2é\`
    `);
    const { diagnostics } = parse('let héllo = 1\n');
    expect(diagnostics.map((d) => d.help)).toEqual(['names are ASCII letters, digits and `_`: write `hello`']);
    const checked = checkSource('model M {\n  input x: f32[B, 4]\n  let héllo = x\n}\nmodel N {\n  input x: f32[B, 4]\n  let ä = x\n  output y = ä\n}\n', 'test.dl');
    // each use of a misspelt name is its own E0001, and resolves: no E0201 cascade
    expect(checked.diagnostics.map((d) => d.code)).toEqual(['E0001', 'E0001', 'E0001']);
  });

  it('E0001 a `#` comment: one error, the rest of the line skipped', () => {
    expectDiagnostics(`
      model M {
        input x: f32[B, 4] # the input, don't "quote" café
                           ^ E0001 unexpected character \`#\`: \`#\` does not start a comment
        output y = x
      }
    `);
    expect(parse('let x = 1 # a comment\n').diagnostics.map((d) => d.help)).toEqual(['comments start with `//` (or `/* ... */`); write `// ...`']);
  });

  it('E0002 unterminated string', () => {
    expectDiagnostics(`
      let a = 1
      let s = "open
              ^^^^^ E0002 unterminated string literal
      let b = 2
      ^^^ E0010 expected an expression, found \`let\`
    `);
  });

  it('E0003 unterminated block comment', () => {
    expectDiagnostics(`
      let a = 1
      /* never closed
      ^^ E0003 unterminated block comment
      let b = 2
    `);
  });

  it('E0004 invalid escape, with the exact span of the escape', () => {
    expectDiagnostics(`
      let s = "a\\qb"
                ^^ E0004 invalid escape \`\\q\`
      let t = "fine \\n \\t \\\\ \\" \\0, bad \\x"
                                        ^^ E0004 invalid escape \`\\x\`
    `);
  });

  it('E0005 number out of range', () => {
    expectDiagnostics(`
      let n = 2147483648
              ^^^^^^^^^^ E0005 does not fit in 32 bits
      let m = 2147483647
      let f = 1e999
              ^^^^^ E0005 is not finite
    `);
  });
});

describe('syntax errors and recovery', () => {
  it('E0010 reports a broken statement in each of two layers and keeps every declaration', () => {
    const program = expectDiagnostics(`
      layer A(n: int) {
        let x = (1 + )
                     ^ E0010 expected an expression, found \`)\`
      }

      layer B(n: int) {
        param w: f32[n, n] = / zeros
                             ^ E0010 expected an expression, found \`/\`
                               ^^^^^ E0010 expected a statement, found \`zeros\`
                               ^^^^^ E0010 expected \`}\`, found \`zeros\`
      }

      model M {
        input x: f32[B, 4]
      }
    `);
    expect(program.body.stmts.map((s) => s.kind === 'Layer' || s.kind === 'Model' ? s.name.text : s.kind)).toEqual(['A', 'B', 'M']);
  });

  it('names keywords as they are spelled (`else`, `in`), not by their token names (`Else`, `In`); an if without else says it needs one', () => {
    expectDiagnostics(`
      let z = if 1 > 0 { 1 }
                            | E0010 expected \`else\`, found the end of the file
    `);
    expect(parse('let z = if 1 > 0 { 1 }\n', 'test.dl').diagnostics[0].help).toBe('an `if` used as a value needs an `else`: `if c { a } else { b }`');
    expectDiagnostics(`
      fn f(x: f32[B, 3]) -> f32[B, 3] {
        for i 0..3 {
              ^ E0010 expected \`in\`, found \`0\`
        }
        return x
      }
    `);
  });

  it('keeps parsing declarations after a broken one, even with a missing `}`', () => {
    const program = expectDiagnostics(`
      layer A {
        let x = )
                ^ E0010 expected an expression, found \`)\`
      }
      layer B {}
      layer C {
        forward( {
                 ^ E0010 expected \`)\`, found \`{\`
      }
       | E0010 expected \`}\`, found the end of the file
      model D {}
    `);
    expect(program.body.stmts.map((s) => (s.kind === 'Layer' || s.kind === 'Model' ? s.name.text : s.kind))).toEqual(['A', 'B', 'C', 'D']);
  });

  it('E0011 did you mean, at the top level, in bodies and in train blocks', () => {
    expectDiagnostics(`
      laye Dense(n: int) {}
      ^^^^ E0011 unknown keyword \`laye\`
    `);
    expectDiagnostics(`
      modle M {}
      ^^^^^ E0011 unknown keyword \`modle\`
    `);
    expectDiagnostics(`
      trian M {}
      ^^^^^ E0011 unknown keyword \`trian\`
    `);
    expectDiagnostics(`
      layer A {
        parm w: f32[4] = zeros
        ^^^^ E0011 unknown keyword \`parm\`
      }
    `);
    expectDiagnostics(`
      model M {
        inptu x: f32[B, 4]
        ^^^^^ E0011 unknown keyword \`inptu\`
      }
    `);
    const help = (source: string) => parse(source).diagnostics.map((d) => d.help);
    expect(help('laye Dense(n: int) {}\n')).toEqual(['did you mean `layer`?']);
    expect(help('modle M {}\n')).toEqual(['did you mean `model`?']);
    expect(help('layer A {\n  parm w: f32[4] = zeros\n}\n')).toEqual(['did you mean `param`?']);
    expect(help('model M {\n  inptu x: f32[B, 4]\n}\n')).toEqual(['did you mean `input`?']);
    expect(help('trian M {}\n')).toEqual(['did you mean `train`?']);
  });

  it('E0012 nesting too deep', () => {
    const source = `let x = ${'('.repeat(300)}1${')'.repeat(300)}\n`;
    const { diagnostics } = parse(source);
    expect(diagnostics.map((d) => d.code)).toEqual(['E0012']);
    // the first bracket past the limit
    expect(diagnostics[0].span).toEqual({ file: '<input>', start: 8 + 200, end: 8 + 201 });
  });

  it('E0014 two ellipses in a shape or an index', () => {
    expectDiagnostics(`
      layer A {
        param w: f32[..., n, ...]
                             ^^^ E0014 may appear only once in a shape
      }
      let y = x[..., 0, ...]
                        ^^^ E0014 may appear only once in an index
    `);
  });
});

describe('soft and hard keywords', () => {
  it('soft keywords are identifiers where no statement starts', () => {
    const layer = clean('layer Dense(in: int, out: int) {\n  param w: f32[in, out]\n}\n').body.stmts[0];
    expect(layer.kind === 'Layer' && layer.params.map((p) => p.name.text)).toEqual(['in', 'out']);
    expect(letValue('step(every: 10)')).toBe('(call step every:10)');
    const model = clean('model M(input: int = 3) {\n  input x: f32[B, input]\n}\n').body.stmts[0];
    expect(model.kind === 'Model' && model.params[0].name.text).toBe('input');
    expect(model.kind === 'Model' && model.body.stmts[0].kind).toBe('Input');
    expect(letValue('loss + metric * state')).toBe('(+ loss (* metric state))');
  });

  it('hard keywords are keyword-argument and member names', () => {
    expect(letValue('dropout(x, train: true)')).toBe('(call dropout x train:Bool)');
    expect(letValue('f(if: 1, model: 2)')).toBe('(call f if:1 model:2)');
    expect(letValue('net.layer.0')).toBe('(. (. net layer) 0)');
  });

  it('`use` as a member or keyword-argument name does not start a declaration (regression)', () => {
    expect(letValue('f(a.use)')).toBe('(call f (. a use))');
    expect(letValue('f(use: 1)')).toBe('(call f use:1)');
    const train = clean('train M(use: 1) {}\n').body.stmts[0];
    expect(train.kind === 'Train' && train.args?.map((a) => a.name?.text)).toEqual(['use']);
  });
});

describe('lines', () => {
  it('a guard `if` shares the line of its declaration; on the next line it is an if statement', () => {
    const nextLine = clean('layer A(n: int) {\n  layer fc = Dense(n, n)\n  if n > 2 {\n    let y = 1\n  }\n}\n').body.stmts[0];
    expect(nextLine.kind === 'Layer' && nextLine.body.stmts.map((s) => s.kind)).toEqual(['SubLayer', 'If']);
    const sameLine = clean('layer A(n: int) {\n  layer fc = Dense(n, n) if n > 2\n}\n').body.stmts[0];
    const sub = sameLine.kind === 'Layer' ? sameLine.body.stmts[0] : undefined;
    expect(sub?.kind === 'SubLayer' && sub.guard && shape(sub.guard)).toBe('(> n 2)');
  });

  it('a call or index on the next line is one error at its bracket, parsed as meant', () => {
    const recovered = expectDiagnostics(`
      model M {
        input x: f32[B, 4]
        let y = relu
          (x)
          ^ E0010 a call's \`(\` must be on the line where \`relu\` ends
        let z = x
          [0]
          ^ E0010 an index's \`[\` must be on the line where \`x\` ends
        output o = y
      }
    `);
    // recovery keeps the call and the index, so nothing after them cascades or goes missing
    const model = recovered.body.stmts[0];
    expect(model.kind === 'Model' && model.body.stmts.map((s) => s.kind)).toEqual(['Input', 'Let', 'Let', 'Output']);
    const { diagnostics } = parse('let y = f\n(x)\n');
    expect(diagnostics.map((d) => d.help)).toEqual(['move the `(` up onto the line where `f` ends: a line that starts with `(` does not continue the line before (§9)']);
    // `(b) = 1` is not an assignment either: its `=` is a second, separate error
    expectDiagnostics(`
      model M {
        let a = f
        (b) = 1
        ^ E0010 a call's \`(\` must be on the line where \`f\` ends
            ^ E0010 expected \`}\`, found \`=\`
      }
    `);
    // a valid input used by the misplaced call is not reported as an unknown name after recovery
    const checked = checkSource('model M {\n  input x: f32[B, 4]\n  let z = x\n    [0]\n  output o = z\n}\n', 'test.dl');
    expect(checked.diagnostics.map((d) => d.code)).toEqual(['E0010']);
    // a member access may continue on the next line
    const program = clean('model M {\n  let a = f\n    .b\n}\n').body.stmts[0];
    const let_ = program.kind === 'Model' ? program.body.stmts[0] : undefined;
    expect(let_?.kind === 'Let' && shape(let_.value)).toBe('(. f b)');
  });
});

describe('precedence', () => {
  it.each([
    ['-x ** 2', '(- (** x 2))'],
    ['not a == b', '(not (== a b))'],
    ['a - b - c', '(- (- a b) c)'],
    ['2 ** 3 ** 2', '(** 2 (** 3 2))'],
    ['a..b + 1', '(.. a (+ b 1))'],
    ['2 ** -1', '(** 2 (- 1))'],
    ['a or b and not c', '(or a (and b (not c)))'],
    ['a + b * c @ d', '(+ a (@ (* b c) d))'],
    ['a < b == c', '(== (< a b) c)'],
    ['-a.b(c)[0]', '(- (index (call (. a b) c) 0))'],
    ['not -x < y', '(not (< (- x) y))'],
    ['a / b % c * d', '(* (% (/ a b) c) d)'],
  ])('%s is %s', (source, tree) => {
    expect(letValue(source)).toBe(tree);
  });
});

describe('habits from other languages', () => {
  it('a compound assignment (y += 1.0) says dlc has none and how to write it, once', () => {
    for (const op of ['+', '-', '*', '/']) {
      const src = `model M {\n  input x: f32[B]\n  let y = x\n  y ${op}= 1.0\n  output o = y\n}\n`;
      const { diagnostics } = parse(src, 't.dl');
      expect(diagnostics.map((d) => `${d.code} ${d.message} | ${d.help}`)).toEqual([`E0010 dlc has no \`${op}=\` | write \`y = y ${op} ...\``]);
      expect(src.slice(diagnostics[0].span.start, diagnostics[0].span.end)).toBe(`y ${op}=`);
    }
  });
});

describe('an if-expression followed by an operator', () => {
  it('is one E0010 saying so; the next declaration still parses', () => {
    expectDiagnostics(`
      model N {
        let k = if a { 1 } else { 2 } + 3
                                      ^ E0010 an if-expression cannot be the operand
      }
      model O {
        let j = ) 2
                ^ E0010
      }
    `);
  });
});

describe('order', () => {
  it('dlc check lists syntax and name errors in source order', () => {
    const checked = checkSource('let a = zz\nlet b = )\n', 'test.dl');
    expect(checked.diagnostics.map((d) => `${d.code}@${d.span.start}`)).toEqual(['E0201@8', 'E0010@19']);
  });
});
