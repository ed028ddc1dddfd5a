// Tokenizes .dl samples with the VS Code TextMate grammar (grammar/vscode) and checks scopes, keyword sync with the lexer, and the .vsix build (the bundled client included).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateRawSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import textmate from 'vscode-textmate';
import type { IGrammar, StateStack } from 'vscode-textmate';
import oniguruma from 'vscode-oniguruma';
import { ALL_KEYWORDS, BUILTIN_TYPES, HARD_KEYWORDS } from '../grammar/lexer.ts';
import { PRELUDE } from '../compiler/resolve/prelude.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const extDir = join(root, 'grammar', 'vscode');
const grammarPath = join(extDir, 'syntaxes', 'dl.tmLanguage.json');

interface Tok {
  text: string;
  scopes: string[];
  line: number;
}

let grammar: IGrammar;

beforeAll(async () => {
  const wasm = readFileSync(join(root, 'node_modules', 'vscode-oniguruma', 'release', 'onig.wasm'));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new textmate.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns: string[]) => new oniguruma.OnigScanner(patterns),
      createOnigString: (s: string) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async (scopeName: string) =>
      scopeName === 'source.dl' ? textmate.parseRawGrammar(readFileSync(grammarPath, 'utf8'), grammarPath) : null,
  });
  const loaded = await registry.loadGrammar('source.dl');
  if (!loaded) throw new Error('source.dl did not load');
  grammar = loaded;
});

function tokenize(source: string): Tok[] {
  const out: Tok[] = [];
  let stack: StateStack = textmate.INITIAL;
  source.split(/\r?\n/).forEach((line, lineNo) => {
    const result = grammar.tokenizeLine(line, stack);
    for (const t of result.tokens) {
      out.push({ text: line.slice(t.startIndex, t.endIndex), scopes: t.scopes, line: lineNo });
    }
    stack = result.ruleStack;
  });
  return out;
}

/** The token whose text is exactly `text` (the `nth` one, from 0); fails the test when there is none. */
function tok(source: string, text: string, nth = 0): Tok {
  const found = tokenize(source).filter((t) => t.text === text);
  const t = found[nth];
  if (!t) {
    const dump = tokenize(source).map((x) => `${JSON.stringify(x.text)} ${x.scopes.join(' ')}`).join('\n');
    throw new Error(`no token ${JSON.stringify(text)} (#${nth}) in ${JSON.stringify(source)}:\n${dump}`);
  }
  return t;
}

const has = (t: Tok, prefix: string): boolean => t.scopes.some((s) => s === prefix || s.startsWith(prefix + '.'));
const isKeyword = (t: Tok): boolean => has(t, 'keyword') && !has(t, 'keyword.operator.arithmetic');
const isType = (t: Tok): boolean => has(t, 'storage.type') || has(t, 'support.type');

describe('grammar generation', () => {
  it('syntaxes/dl.tmLanguage.json is what build-grammar.mjs makes from grammar/lexer.ts', () => {
    const run = spawnSync(process.execPath, [join(extDir, 'build-grammar.mjs'), '--check'], { encoding: 'utf8' });
    expect(run.stderr + run.stdout).toContain('up to date');
    expect(run.status).toBe(0);
  });

  it('the manifest declares the language, grammar and snippets', () => {
    const manifest = JSON.parse(readFileSync(join(extDir, 'package.json'), 'utf8'));
    expect(manifest.name).toBe('dlc-language');
    expect(manifest.publisher).toBe('dlc');
    expect(manifest.engines.vscode).toBe('^1.80.0');
    expect(manifest.contributes.languages[0]).toMatchObject({ id: 'dl', extensions: ['.dl'] });
    expect(manifest.contributes.grammars[0]).toMatchObject({ scopeName: 'source.dl', path: './syntaxes/dl.tmLanguage.json' });
    for (const rel of [manifest.contributes.languages[0].configuration, manifest.contributes.snippets[0].path]) {
      expect(existsSync(join(extDir, rel))).toBe(true);
      JSON.parse(readFileSync(join(extDir, rel), 'utf8'));
    }
    const snippets = JSON.parse(readFileSync(join(extDir, 'snippets', 'dl.json'), 'utf8')) as Record<string, { prefix: string }>;
    const prefixes = Object.values(snippets).map((s) => s.prefix);
    for (const p of ['layer', 'model', 'train', 'fn', 'forward']) expect(prefixes).toContain(p);
  });
});

describe('keywords and types stay in sync with the lexer', () => {
  it.each([...ALL_KEYWORDS])('%s is a keyword at statement start', (word) => {
    for (const line of [`${word} x`, `    ${word} x`, `{ ${word} x }`]) {
      const t = tok(line, word);
      expect(isKeyword(t), `${JSON.stringify(line)}: ${t.scopes.join(' ')}`).toBe(true);
    }
  });

  it.each([...BUILTIN_TYPES])('%s is a type', (type) => {
    const plain = tok(`let v: ${type} = 1`, type);
    expect(isType(plain), plain.scopes.join(' ')).toBe(true);
    const shaped = tok(`input x: ${type}[B, 4]`, type);
    expect(isType(shaped), shaped.scopes.join(' ')).toBe(true);
  });
});

describe('lexical scopes', () => {
  it.each(['10', '0.5', '1e-3', '2.5e+4', '0', '123.456E7'])('number %s', (n) => {
    expect(has(tok(`let a = ${n} + 1`, n), 'constant.numeric')).toBe(true);
  });

  it('ranges are not floats', () => {
    const src = 'for i in 0..10 { }';
    expect(has(tok(src, '0'), 'constant.numeric.integer')).toBe(true);
    expect(has(tok(src, '..'), 'keyword.operator.range')).toBe(true);
    expect(has(tok(src, '10'), 'constant.numeric.integer')).toBe(true);
  });

  it('strings and escapes', () => {
    const src = 'use "lib/\\\\a\\"b\\n\\r\\t\\0.dl"';
    const tokens = tokenize(src);
    const inString = tokens.filter((t) => has(t, 'string.quoted.double'));
    expect(inString.map((t) => t.text).join('')).toBe(src.slice(4));
    for (const esc of ['\\\\', '\\"', '\\n', '\\r', '\\t', '\\0']) {
      expect(has(tok(src, esc), 'constant.character.escape'), esc).toBe(true);
    }
    expect(has(tok('let s = "a\\qb"', '\\q'), 'invalid.illegal')).toBe(true);
  });

  it('line and block comments', () => {
    expect(has(tok('let a = 1 // note: in use', '//'), 'comment.line')).toBe(true);
    expect(has(tok('let a = 1 // note: in use', ' note: in use'), 'comment.line')).toBe(true);
    const block = tokenize('let a /* one\n  layer two\n */ = 1');
    for (const t of block.filter((x) => /one|two/.test(x.text))) expect(has(t, 'comment.block')).toBe(true);
    expect(has(tok('let a /* one\n  layer two\n */ = 1', '='), 'keyword.operator')).toBe(true);
    // comments do not nest: the first */ closes
    expect(has(tok('/* a /* b */ let', 'let'), 'keyword')).toBe(true);
  });

  it.each(['+', '-', '*', '/', '%', '**', '@', '==', '!=', '<', '<=', '>', '>=', '=', '->', '=>', '..', '...'])('operator %s', (op) => {
    const t = tok(`let y = a ${op} b`, op);
    expect(has(t, 'keyword.operator'), t.scopes.join(' ')).toBe(true);
  });

  it('brackets and separators are punctuation', () => {
    for (const p of ['(', ')', '[', ']', '{', '}', ',', ';', ':']) {
      expect(has(tok('f(a: x[0], b); { }', p), 'punctuation'), p).toBe(true);
    }
  });

  it('characters the lexer rejects are invalid', () => {
    for (const c of ['#', '$', '?', '&', '|', '^', '~', "'", '!']) {
      expect(has(tok(`let a = b ${c} c`, c), 'invalid.illegal'), c).toBe(true);
    }
  });
});

describe('declarations and statements', () => {
  it('layer, model and train names are type names; fn names are functions', () => {
    expect(has(tok('layer Dense(in: int, out: int) {', 'Dense'), 'entity.name.type')).toBe(true);
    expect(has(tok('model Mnist {', 'Mnist'), 'entity.name.type')).toBe(true);
    expect(has(tok('model Gan() {', 'Gan'), 'entity.name.type')).toBe(true);
    expect(has(tok('train Fit {', 'Fit'), 'entity.name.type')).toBe(true);
    expect(has(tok('fn gelu(x: f32[...]) -> f32[...] {', 'gelu'), 'entity.name.function')).toBe(true);
    expect(has(tok('fn gelu(x: f32[...]) -> f32[...] {', 'fn'), 'keyword')).toBe(true);
  });

  it('a sub-layer statement names a binding, not a type', () => {
    const src = '  layer fc = Dense(784, 10)';
    expect(has(tok(src, 'fc'), 'entity.name.type')).toBe(false);
    expect(has(tok(src, 'fc'), 'variable')).toBe(true);
    expect(has(tok(src, 'Dense'), 'entity.name.type')).toBe(true);
  });

  it('lambdas', () => {
    const src = 'let double = fn(x) => x * 2';
    expect(has(tok(src, 'fn'), 'keyword')).toBe(true);
    expect(has(tok(src, '=>'), 'keyword.operator')).toBe(true);
    expect(has(tok(src, 'x', 1), 'entity.name.function')).toBe(false);
  });

  it('use declarations', () => {
    const src = 'use std.nn.{Dense, Conv2d as Conv}';
    expect(has(tok(src, 'use'), 'keyword.control.import')).toBe(true);
    expect(has(tok(src, 'std'), 'entity.name.namespace')).toBe(true);
    expect(has(tok(src, 'Dense'), 'entity.name.type')).toBe(true);
    expect(has(tok(src, 'as'), 'keyword')).toBe(true);
  });

  it('shapes: symbolic dims get their own scope, soft keywords in shapes are names', () => {
    const src = '  param w: f32[B, T, in, 784] = glorot_uniform';
    expect(has(tok(src, 'param'), 'keyword')).toBe(true);
    expect(has(tok(src, 'w'), 'variable.other.member')).toBe(true);
    expect(has(tok(src, 'B'), 'variable.other.constant.dimension')).toBe(true);
    expect(has(tok(src, 'T'), 'variable.other.constant.dimension')).toBe(true);
    expect(has(tok(src, 'B'), 'meta.type.shape')).toBe(true);
    expect(isKeyword(tok(src, 'in'))).toBe(false);
    expect(has(tok(src, '784'), 'constant.numeric')).toBe(true);
    expect(has(tok(src, 'glorot_uniform'), 'meta.type.shape')).toBe(false);
  });

  it('statement keywords', () => {
    const cases: Array<[string, string]> = [
      ['  state running_mean: f32[n] = zeros', 'state'],
      ['  input image: f32[B, 784]', 'input'],
      ['  output probs = softmax(logits, axis: -1)', 'output'],
      ['  loss = cross_entropy(probs, labels)', 'loss'],
      ['  loss d_loss = bce(real, fake)', 'loss'],
      ['  metric accuracy = mean(argmax(probs) == labels)', 'metric'],
      ['  where d % heads == 0', 'where'],
      ['  forward(x: f32[B, n]) -> f32[B, m] { return x @ w }', 'forward'],
      ['  forward(x: f32[B, n]) -> f32[B, m] { return x @ w }', 'return'],
      ['  if training { x } else { y }', 'else'],
      ['  step disc {', 'step'],
      ['    minimize d_loss over D with adam(lr: 2e-4)', 'minimize'],
      ['    minimize d_loss over D with adam(lr: 2e-4)', 'over'],
      ['    minimize d_loss over D with adam(lr: 2e-4)', 'with'],
      ['  step gen { maximize g_score over G }', 'maximize'],
      ['  step gen { maximize g_score over G }', 'over'],
      ['  freeze backbone', 'freeze'],
      ['  for l in layers { x = l(x) }', 'in'],
      ['  let ys = [f(l) for l in layers if l != None]', 'in'],
      ['  let ys = [f(l) for l in layers if l != None]', 'None'],
    ];
    for (const [src, word] of cases) {
      const t = tok(src, word);
      expect(isKeyword(t), `${word} in ${JSON.stringify(src)}: ${t.scopes.join(' ')}`).toBe(true);
    }
    expect(has(tok('  output probs = softmax(logits, axis: -1)', 'axis'), 'variable.parameter')).toBe(true);
    expect(has(tok('  output probs = softmax(logits, axis: -1)', 'softmax'), 'entity.name.function')).toBe(true);
    expect(has(tok('  forward(x: f32[B, n]) -> f32[B, m] { return x @ w }', '->'), 'keyword.operator')).toBe(true);
    expect(has(tok('  step disc {', 'disc'), 'entity.name')).toBe(true);
  });

  it('scan clauses', () => {
    const src = '  let hs = scan reverse x_t in x along 1 carry (h = h0) { h = cell(x_t, h); yield h }';
    for (const word of ['let', 'scan', 'reverse', 'in', 'along', 'carry', 'yield']) {
      const t = tok(src, word);
      expect(isKeyword(t), `${word}: ${t.scopes.join(' ')}`).toBe(true);
    }
    expect(has(tok(src, 'cell'), 'entity.name.function')).toBe(true);
    const several = '  let hs = scan reverse x_t, m_t in (x, m) along 1 { yield x_t * m_t }';
    for (const word of ['scan', 'reverse', 'in', 'along', 'yield']) expect(isKeyword(tok(several, word)), word).toBe(true);
  });

  it('soft keywords used as names are not keywords', () => {
    const cases: Array<[string, string]> = [
      ['layer Dense(in: int, out: int) {', 'in'],
      ['  let y = x * in + 1', 'in'],
      ['  layer fc = Dense(in, out)', 'in'],
      ['  schedule = step(every: 10)', 'step'],
      ['  step(every: 10)', 'step'],
      ['  state = 3', 'state'],
      ['  let r = reverse(x)', 'reverse'],
      ['  return in', 'in'],
      ['  let w = with + over', 'with'],
      ['  let w = with + over', 'over'],
      ['  input_size = 3', 'input_size'],
    ];
    for (const [src, word] of cases) {
      const t = tok(src, word);
      expect(isKeyword(t), `${word} in ${JSON.stringify(src)}: ${t.scopes.join(' ')}`).toBe(false);
    }
  });

  it('a whole program tokenizes without invalid tokens', () => {
    const program = [
      '// A small GAN and a classifier.',
      'use std.nn.{Dense, Conv2d}',
      '',
      '/* Dense layer:',
      '   y = x @ w + b */',
      'layer Dense(in: int, out: int, bias: bool = true) {',
      '  param w: f32[in, out] = glorot_uniform',
      '  param b: f32[out] = zeros if bias',
      '  forward(x: f32[B, in]) -> f32[B, out] {',
      '    return x @ w + b',
      '  }',
      '}',
      '',
      'fn gelu(x: f32[...]) -> f32[...] = 0.5 * x * (1.0 + tanh(0.79788456 * (x + 0.044715 * x ** 3)))',
      '',
      'model Mnist(hidden: int = 128, heads: int = 4) {',
      '  where hidden % heads == 0',
      '  input image: f32[B, 784]',
      '  input label: i32[B]',
      '  state running_mean: f32[hidden] = zeros',
      '  layer fc1 = Dense(784, hidden)',
      '  layer fc2 = Dense(hidden, 10)',
      '  let blocks = [Dense(hidden, hidden) for i in 0..4]',
      '  let h = gelu(fc1(image))',
      '  for l in blocks { h = l(h) }',
      '  let hs = scan reverse x_t in h along 1 carry (c = h[:, 0]) { c = c + x_t; yield c }',
      '  let scaled = map(hs, fn(v) => v * 2)',
      '  output logits = fc2(h)',
      '  output probs = softmax(logits, axis: -1)',
      '  loss = cross_entropy(logits, label)',
      '  metric accuracy = mean(argmax(probs, axis: -1) == label)',
      '  if hidden > 64 and not false { let z = 1e-3 } else { let z = 2.5e+4 }',
      '}',
      '',
      'train Fit(model: Mnist(), data: "mnist") {',
      '  epochs = 10',
      '  optimizer = adamw(lr: 1e-3, schedule: step(every: 10))',
      '  freeze fc1',
      '  early_stopping { patience = 3; metric = "accuracy" }',
      '  step disc {',
      '    minimize d_loss over D with adam(lr: 2e-4)',
      '  }',
      '}',
    ].join('\n');
    const tokens = tokenize(program);
    const bad = tokens.filter((t) => t.scopes.some((s) => s.startsWith('invalid')));
    expect(bad.map((t) => `${t.line + 1}: ${JSON.stringify(t.text)}`)).toEqual([]);
    expect(has(tok(program, 'Mnist'), 'entity.name.type')).toBe(true);
    expect(has(tok(program, 'Fit'), 'entity.name.type')).toBe(true);
    expect(has(tok(program, 'gelu'), 'entity.name.function')).toBe(true);
    expect(isKeyword(tok(program, 'freeze'))).toBe(true);
    expect(isKeyword(tok(program, 'step'))).toBe(false); // step(every: 10)
    expect(isKeyword(tok(program, 'step', 1))).toBe(true); // step disc {
    expect(has(tok(program, 'true'), 'constant.language')).toBe(true);
  });
});

describe('words in the positions the reference gives any word', () => {
  it('slice bounds are not parameter names', () => {
    for (const [src, word, nth] of [['let a = z[:, hidden:2 * hidden]', 'hidden', 0], ['let b = x[i:j, 1:]', 'i', 0], ['let c = f(x[i:j])', 'i', 0]] as const) {
      const t = tok(src, word, nth);
      expect(has(t, 'variable.parameter'), `${word} in ${src}: ${t.scopes.join(' ')}`).toBe(false);
    }
    // inside a call's parentheses a word before `:` still names an argument, across lines too
    expect(has(tok('let c = f(x[0], axis: 1)', 'axis'), 'variable.parameter')).toBe(true);
    expect(has(tok('layer Dense(\n  in: int,\n  out: int\n) {', 'out'), 'variable.parameter')).toBe(true);
  });

  it.each([...HARD_KEYWORDS])('the hard keyword %s as a member name or an argument name is not a keyword', (word) => {
    for (const src of [`  y = x.${word} + 1`, `  y = f(${word}: 1, b: 2)`, `  y = dropout(x, ${word}: true)`, `  y = net.${word}.w`]) {
      const t = tok(src, word);
      expect(isKeyword(t), `${word} in ${src}: ${t.scopes.join(' ')}`).toBe(false);
    }
  });

  it('`use:` as an argument name does not open an import', () => {
    const src = 'let u = f(train: true, use: 1)';
    expect(has(tok(src, 'use'), 'meta.import')).toBe(false);
    expect(has(tok(src, ')'), 'punctuation.section.parens.end')).toBe(true);
    expect(has(tok(src, '1'), 'constant.numeric')).toBe(true);
  });

  it('`*` in a parameter path is a wildcard', () => {
    const src = 'freeze net.*.bn1.*';
    expect(has(tok(src, '*', 0), 'keyword.operator.wildcard')).toBe(true);
    expect(has(tok(src, '*', 1), 'keyword.operator.wildcard')).toBe(true);
    expect(has(tok('  param_group decay { params = [*.w] }', '*'), 'keyword.operator.wildcard')).toBe(true);
    expect(has(tok('let y = a * b', '*'), 'keyword.operator.arithmetic')).toBe(true);
  });

  it('a leading block comment does not stop a statement keyword', () => {
    const src = '/* c */ input x: f32[B, 4]';
    expect(isKeyword(tok(src, 'input'))).toBe(true);
    expect(has(tok(src, 'x'), 'variable.parameter')).toBe(false);
  });
});

describe('builtins', () => {
  it("every name of the compiler's prelude that is not a keyword or a type gets a support scope", () => {
    const types = new Set<string>(BUILTIN_TYPES);
    const keywords = new Set<string>(HARD_KEYWORDS);
    const names = [...PRELUDE].filter((n) => !types.has(n) && !keywords.has(n));
    expect(names.length).toBeGreaterThan(100);
    for (const name of names) {
      const t = tok(`let v = ${name} + 1`, name);
      expect(has(t, 'support'), `${name}: ${t.scopes.join(' ')}`).toBe(true);
    }
  });

  it('gives functions, initializers, datasets, optimizers and the training flag their own scopes', () => {
    expect(has(tok('  output y = relu(x)', 'relu'), 'support.function.builtin')).toBe(true);
    expect(has(tok('  output y = relu(x)', 'relu'), 'entity.name.function.call')).toBe(true);
    expect(has(tok('  param w: f32[4] = zeros', 'zeros'), 'support.function.initializer')).toBe(true);
    expect(has(tok('  param w: f32[4, 4] = glorot_uniform', 'glorot_uniform'), 'support.function.initializer')).toBe(true);
    expect(has(tok('  data = mnist(split: "train")', 'mnist'), 'support.function.dataset')).toBe(true);
    expect(has(tok('  optimizer = adam(lr: 1e-3)', 'adam'), 'support.function.optimizer')).toBe(true);
    expect(has(tok('  let p = if training { 0.1 } else { 0.0 }', 'training'), 'support.constant')).toBe(true);
    expect(has(tok('  layer fc = Dense(4, 2)', 'Dense'), 'support.class')).toBe(true);
    // but not as a member or an argument name
    expect(has(tok('let v = net.relu', 'relu'), 'support')).toBe(false);
    expect(has(tok('let v = f(training: 1)', 'training'), 'support')).toBe(false);
  });
});

describe('indentation rules', () => {
  const rules = JSON.parse(readFileSync(join(extDir, 'language-configuration.json'), 'utf8')).indentationRules as Record<string, string>;
  const increase = new RegExp(rules.increaseIndentPattern);
  it.each([
    ['model M {', true],
    ['layer L(a: int,', true],
    ['let x = [', true],
    ['let a = f(a, b,', true],
    ['let a = f("a", b,', true],
    ['early_stopping { monitor = "val_loss"', true],
    ['let m = precision(logits, label, average: "macro",', true],
    ['let q = "}" + f(', true],
    ['let e = f("say \\"(\\"", b,', true],
    ['let y = f(x)', false],
    ['let s = "{"', false],
    ['let s = "("', false],
    ['x = f("a", b)', false],
    ['monitor = "val_loss"', false],
  ] as const)('%s indents the next line: %s', (line, indents) => {
    expect(increase.test(line)).toBe(indents);
  });
});

describe('examples', () => {
  it('every examples/*.dl file tokenizes without invalid.illegal scopes', () => {
    const dir = join(root, 'examples');
    const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.dl')).sort() : [];
    const bad: string[] = [];
    for (const file of files) {
      for (const t of tokenize(readFileSync(join(dir, file), 'utf8'))) {
        if (t.scopes.some((s) => s.startsWith('invalid.illegal'))) bad.push(`${file}:${t.line + 1}: ${JSON.stringify(t.text)}`);
      }
    }
    expect(bad).toEqual([]);
  });
});

/** Entry names and a reader for a zip's stored/deflated entries, from its central directory. */
function readZip(buf: Buffer): { names: string[]; read: (name: string) => Buffer } {
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 0xffff); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a zip: no end of central directory record');
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const entries = new Map<string, { method: number; size: number; offset: number }>();
  for (let i = 0; i < count; i++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error('bad central directory entry');
    const method = buf.readUInt16LE(p + 10);
    const size = buf.readUInt32LE(p + 20);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const offset = buf.readUInt32LE(p + 42);
    entries.set(buf.toString('utf8', p + 46, p + 46 + nameLen), { method, size, offset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return {
    names: [...entries.keys()],
    read(name) {
      const e = entries.get(name);
      if (!e) throw new Error(`no ${name} in zip`);
      if (buf.readUInt32LE(e.offset) !== 0x04034b50) throw new Error('bad local header');
      const start = e.offset + 30 + buf.readUInt16LE(e.offset + 26) + buf.readUInt16LE(e.offset + 28);
      const data = buf.subarray(start, start + e.size);
      return e.method === 8 ? inflateRawSync(data) : Buffer.from(data);
    },
  };
}

describe('vsix', () => {
  it('package.mjs builds a zip with the extension files', { timeout: 60_000 }, () => {
    const tmp = mkdtempSync(join(tmpdir(), 'dlc-vsix-'));
    try {
      const out = join(tmp, 'dlc-language.vsix');
      const run = spawnSync(process.execPath, [join(extDir, 'package.mjs'), '--out', out], { encoding: 'utf8', cwd: root });
      expect(run.status, run.stderr + run.stdout).toBe(0);
      const zip = readZip(readFileSync(out));
      for (const name of [
        '[Content_Types].xml',
        'extension.vsixmanifest',
        'extension/package.json',
        'extension/language-configuration.json',
        'extension/syntaxes/dl.tmLanguage.json',
        'extension/snippets/dl.json',
        'extension/out/extension.js',
      ]) {
        expect(zip.names).toContain(name);
      }
      // the client is bundled: no sources, no node_modules
      expect(zip.names.filter((n) => /\.(mjs|mts|ts|map)$/.test(n) || n.includes('node_modules'))).toEqual([]);
      const manifest = JSON.parse(zip.read('extension/package.json').toString('utf8'));
      expect(manifest.name).toBe('dlc-language');
      expect(manifest.main).toBe('./out/extension.js');
      expect(manifest.activationEvents).toEqual(['onLanguage:dl']);
      // CommonJS that needs only VS Code and Node's own modules
      const bundle = zip.read('extension/out/extension.js').toString('utf8');
      const required = [...bundle.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]);
      expect(required).toContain('vscode');
      expect(required.filter((r) => r !== 'vscode' && !r.startsWith('node:'))).toEqual([]);
      expect(zip.read('extension.vsixmanifest').toString('utf8')).toContain('Id="dlc-language"');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
