// Generates syntaxes/dl.tmLanguage.json from the keyword lists in grammar/lexer.ts and the prelude's names (run with --check to verify it is up to date).
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { tsImport } from 'tsx/esm/api';

const here = dirname(fileURLToPath(import.meta.url));
const lexerPath = join(here, '..', 'lexer.ts');
const outPath = join(here, 'syntaxes', 'dl.tmLanguage.json');

/** Reads `export const NAME = [ 'a', 'b', ... ]` out of lexer.ts without running TypeScript. */
function readWordList(source, name) {
  const match = new RegExp(`export const ${name}\\s*=\\s*\\[([\\s\\S]*?)\\]`).exec(source);
  if (!match) throw new Error(`build-grammar: cannot find ${name} in ${lexerPath}`);
  const words = [...match[1].matchAll(/'([^']+)'|"([^"]+)"/g)].map((m) => m[1] ?? m[2]);
  if (words.length === 0) throw new Error(`build-grammar: ${name} in ${lexerPath} is empty`);
  for (const w of words) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(w)) throw new Error(`build-grammar: ${name} holds a non-identifier ${JSON.stringify(w)}`);
  }
  return words;
}

const lexerSource = readFileSync(lexerPath, 'utf8');
const HARD = readWordList(lexerSource, 'HARD_KEYWORDS');
const SOFT = readWordList(lexerSource, 'SOFT_KEYWORDS');
const TYPES = readWordList(lexerSource, 'BUILTIN_TYPES');

/** The prelude's names, from the compiler's own tables: each gets a support.* scope. */
const { STD_MODULES } = await tsImport(pathToFileURL(join(here, '..', '..', 'compiler', 'resolve', 'prelude.ts')).href, import.meta.url);
const { BUILTIN_NAMES, INITIALIZERS } = await tsImport(pathToFileURL(join(here, '..', '..', 'compiler', 'elaborate', 'builtins.ts')).href, import.meta.url);
const claimed = new Set([...HARD, ...TYPES]);
/** Each name once, in the first group that lists it; keywords and type names keep their own scopes. */
function claim(names) {
  const fresh = [...new Set(names)].filter((n) => !claimed.has(n)).sort();
  for (const n of fresh) claimed.add(n);
  return fresh;
}
const lowercase = (names) => names.filter((n) => /^[a-z_]/.test(n));
const BUILTINS = {
  'support.constant.training.dl': claim(['training']),
  'support.function.initializer.dl': claim([...Object.keys(INITIALIZERS), ...STD_MODULES['std.init']]),
  'support.function.optimizer.dl': claim(STD_MODULES['std.optim']),
  'support.function.dataset.dl': claim(STD_MODULES['std.data']),
  'support.function.builtin.dl': claim([
    ...BUILTIN_NAMES,
    ...['std.nn', 'std.act', 'std.loss', 'std.math', 'std.metrics'].flatMap((m) => lowercase(STD_MODULES[m])),
  ]),
  'support.class.layer.dl': claim(STD_MODULES['std.nn'].filter((n) => /^[A-Z]/.test(n))),
};
for (const [scope, names] of Object.entries(BUILTINS)) {
  if (names.length === 0) throw new Error(`build-grammar: no names for ${scope}`);
  for (const n of names) if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(n)) throw new Error(`build-grammar: ${scope} holds a non-identifier ${JSON.stringify(n)}`);
}

/** Scope of each keyword; a keyword the lexer gains later falls back to keyword.other.<word>.dl. */
const KEYWORD_SCOPES = {
  use: 'keyword.control.import.dl',
  as: 'keyword.control.import.as.dl',
  layer: 'keyword.declaration.layer.dl',
  model: 'keyword.declaration.model.dl',
  train: 'keyword.declaration.train.dl',
  fn: 'keyword.declaration.function.dl',
  forward: 'keyword.declaration.function.forward.dl',
  param: 'keyword.declaration.param.dl',
  state: 'keyword.declaration.state.dl',
  let: 'keyword.declaration.let.dl',
  input: 'keyword.declaration.input.dl',
  output: 'keyword.declaration.output.dl',
  loss: 'keyword.other.loss.dl',
  metric: 'keyword.other.metric.dl',
  return: 'keyword.control.flow.return.dl',
  yield: 'keyword.control.flow.yield.dl',
  for: 'keyword.control.loop.for.dl',
  in: 'keyword.control.loop.in.dl',
  if: 'keyword.control.conditional.if.dl',
  else: 'keyword.control.conditional.else.dl',
  where: 'keyword.other.where.dl',
  scan: 'keyword.control.scan.dl',
  along: 'keyword.control.scan.along.dl',
  carry: 'keyword.control.scan.carry.dl',
  reverse: 'keyword.control.scan.reverse.dl',
  and: 'keyword.operator.logical.and.dl',
  or: 'keyword.operator.logical.or.dl',
  not: 'keyword.operator.logical.not.dl',
  // literals are keywords to the lexer; the innermost scope colours them as constants
  true: 'keyword.other.literal.dl constant.language.boolean.true.dl',
  false: 'keyword.other.literal.dl constant.language.boolean.false.dl',
  None: 'keyword.other.literal.dl constant.language.none.dl',
  step: 'keyword.other.train.step.dl',
  minimize: 'keyword.other.train.minimize.dl',
  maximize: 'keyword.other.train.maximize.dl',
  over: 'keyword.other.train.over.dl',
  with: 'keyword.other.train.with.dl',
  freeze: 'keyword.other.train.freeze.dl',
};
const scopeOf = (word) => KEYWORD_SCOPES[word] ?? `keyword.other.${word.toLowerCase()}.dl`;

const IDENT = '[A-Za-z_][A-Za-z0-9_]*';
const alt = (words) => words.join('|');
/** Where a statement may begin: the start of a line, just after `{` or `;` on the same line, or after a block comment. */
const STMT = '(?:^|(?<=[{;]|\\*/))\\s*';
/** A following token that makes a soft keyword an identifier instead (assignment, call, member, argument name, ...). */
const NOT_IDENTIFIER_USE = '(?=\\s+[^\\s=:,.)\\]}+*/%@<>!-])';
/** Soft keywords that only join clauses inside a statement (`for l in xs`, `scan reverse x in xs along 1 carry (...)`, `over D with adam(...)`, `use a as b`). */
const CLAUSE_SOFT = SOFT.filter((w) => ['in', 'as', 'over', 'with', 'along', 'carry', 'reverse'].includes(w));

const keywordPattern = (word) => ({ match: `\\b${word}\\b`, name: scopeOf(word) });
/** A hard keyword, unless it is a member name (`x.model`): member and argument names may be any word. */
const hardKeywordPattern = (word) => ({ match: `(?<!\\.)\\b${word}\\b(?!\\s*:(?!:))`, name: scopeOf(word) });

const grammar = {
  $schema: 'https://raw.githubusercontent.com/martinring/tmlanguage/master/tmlanguage.json',
  name: 'DL',
  scopeName: 'source.dl',
  fileTypes: ['dl'],
  patterns: [{ include: '#statements' }],
  repository: {
    statements: {
      patterns: [
        { include: '#comments' },
        { include: '#strings' },
        { include: '#use' },
        { include: '#declarations' },
        { include: '#statement-keywords' },
        { include: '#expression' },
      ],
    },
    comments: {
      patterns: [
        {
          name: 'comment.block.documentation.dl',
          begin: '/\\*\\*(?!/)',
          end: '\\*/',
          beginCaptures: { 0: { name: 'punctuation.definition.comment.begin.dl' } },
          endCaptures: { 0: { name: 'punctuation.definition.comment.end.dl' } },
        },
        {
          name: 'comment.block.dl',
          begin: '/\\*',
          end: '\\*/',
          beginCaptures: { 0: { name: 'punctuation.definition.comment.begin.dl' } },
          endCaptures: { 0: { name: 'punctuation.definition.comment.end.dl' } },
        },
        {
          match: '(//).*$',
          name: 'comment.line.double-slash.dl',
          captures: { 1: { name: 'punctuation.definition.comment.dl' } },
        },
      ],
    },
    strings: {
      patterns: [
        {
          name: 'string.quoted.double.dl',
          begin: '"',
          end: '"|$',
          beginCaptures: { 0: { name: 'punctuation.definition.string.begin.dl' } },
          endCaptures: { 0: { name: 'punctuation.definition.string.end.dl' } },
          patterns: [
            { match: '\\\\[\\\\"nrt0]', name: 'constant.character.escape.dl' },
            { match: '\\\\.?', name: 'invalid.illegal.unknown-escape.dl' },
          ],
        },
      ],
    },
    use: {
      name: 'meta.import.dl',
      // not `f(use: 1)`, nor a member `x.use`
      begin: `(?<!\\.)\\b(use)\\b(?!\\s*:)`,
      end: '(?=[;}])|$',
      beginCaptures: { 1: { name: scopeOf('use') } },
      patterns: [
        { include: '#comments' },
        { include: '#strings' },
        { match: '\\bas\\b', name: scopeOf('as') },
        {
          begin: '\\{',
          end: '\\}',
          beginCaptures: { 0: { name: 'punctuation.section.braces.begin.dl' } },
          endCaptures: { 0: { name: 'punctuation.section.braces.end.dl' } },
          patterns: [
            { include: '#comments' },
            { match: '\\bas\\b', name: scopeOf('as') },
            { match: '\\b[A-Z][A-Za-z0-9_]*\\b', name: 'entity.name.type.dl' },
            { match: `\\b${IDENT}\\b`, name: 'entity.name.function.dl' },
            { match: ',', name: 'punctuation.separator.comma.dl' },
          ],
        },
        { match: `\\b${IDENT}(?=\\s*\\.)`, name: 'entity.name.namespace.dl' },
        { match: '\\.', name: 'punctuation.accessor.dl' },
        { match: '\\*', name: 'keyword.operator.wildcard.dl' },
        { match: '\\b[A-Z][A-Za-z0-9_]*\\b', name: 'entity.name.type.dl' },
        { match: `\\b${IDENT}\\b`, name: 'variable.other.dl' },
      ],
    },
    declarations: {
      patterns: [
        ...['layer', 'model'].map((kw) => ({
          comment: `${kw} Name(...) { ... }`,
          match: `(?<!\\.)\\b(${kw})\\s+(${IDENT})(?=\\s*(?:[({]|$))`,
          captures: { 1: { name: scopeOf(kw) }, 2: { name: 'entity.name.type.dl' } },
        })),
        {
          comment: 'layer fc = Dense(784, 10)',
          match: `(?<!\\.)\\b(layer)\\s+(${IDENT})`,
          captures: { 1: { name: scopeOf('layer') }, 2: { name: 'variable.other.definition.dl' } },
        },
        {
          comment: 'train Name { ... }',
          match: `(?<!\\.)\\b(train)\\s+(${IDENT})`,
          captures: { 1: { name: scopeOf('train') }, 2: { name: 'entity.name.type.train.dl' } },
        },
        {
          comment: 'fn name(...) -> T { ... }  (a lambda `fn(x) => ...` has no name)',
          match: `(?<!\\.)\\b(fn)\\s+(${IDENT})`,
          captures: { 1: { name: scopeOf('fn') }, 2: { name: 'entity.name.function.dl' } },
        },
        {
          comment: 'param w: f32[in, out] = ...',
          match: `(?<!\\.)\\b(param)\\s+(${IDENT})`,
          captures: { 1: { name: scopeOf('param') }, 2: { name: 'variable.other.member.dl' } },
        },
        {
          comment: 'let x = ...',
          match: `(?<!\\.)\\b(let)\\s+(${IDENT})`,
          captures: { 1: { name: scopeOf('let') }, 2: { name: 'variable.other.definition.dl' } },
        },
      ],
    },
    'statement-keywords': {
      comment: 'Soft keywords are keywords where a statement starts (or joins clauses) and identifiers elsewhere.',
      patterns: [
        ...['state'].filter((w) => SOFT.includes(w)).map((kw) => ({
          match: `${STMT}\\b(${kw})\\s+(${IDENT})`,
          captures: { 1: { name: scopeOf(kw) }, 2: { name: 'variable.other.member.dl' } },
        })),
        ...['input', 'output', 'metric'].filter((w) => SOFT.includes(w)).map((kw) => ({
          match: `${STMT}\\b(${kw})\\s+(${IDENT})`,
          captures: { 1: { name: scopeOf(kw) }, 2: { name: 'variable.other.definition.dl' } },
        })),
        {
          comment: 'loss = ... | loss name = ...',
          match: `${STMT}\\b(loss)(?:\\s+(${IDENT}))?(?=\\s*=(?!=))`,
          captures: { 1: { name: scopeOf('loss') }, 2: { name: 'variable.other.definition.dl' } },
        },
        {
          comment: 'step name { ... }',
          match: `${STMT}\\b(step)\\s+(${IDENT})(?=\\s*(?:\\{|$))`,
          captures: { 1: { name: scopeOf('step') }, 2: { name: 'entity.name.section.step.dl' } },
        },
        {
          comment: 'minimize / maximize / freeze, unless assigned, called or opening a settings block',
          match: `${STMT}\\b(minimize|maximize|freeze)\\b(?!\\s*(?:=|\\{|\\(|[.,:)\\]]))`,
          captures: { 1: { patterns: ['minimize', 'maximize', 'freeze'].map(keywordPattern) } },
        },
        {
          comment: 'any other soft keyword that starts a statement and is followed by an operand',
          match: `${STMT}\\b(${alt(SOFT)})\\b${NOT_IDENTIFIER_USE}`,
          captures: { 1: { patterns: SOFT.map(keywordPattern) } },
        },
        { include: '#clause-keywords' },
      ],
    },
    'clause-keywords': {
      comment: 'clause keywords after an operand: `for l in xs`, `scan reverse x in xs along 1 carry (h = h0)`, `over D with adam()`',
      match: `(?<=[A-Za-z0-9_)\\]*])\\s+(${alt(CLAUSE_SOFT)})\\b(?=\\s+[^\\s=:,.)\\]}+*/%@<>!-])`,
      captures: { 1: { patterns: CLAUSE_SOFT.map(keywordPattern) } },
    },
    expression: {
      patterns: [
        { include: '#comments' },
        { include: '#strings' },
        { include: '#member' },
        { include: '#hard-keywords' },
        { include: '#types' },
        { include: '#numbers' },
        { include: '#builtins' },
        { include: '#calls' },
        { include: '#identifiers' },
        { include: '#wildcard' },
        { include: '#operators' },
        { include: '#parens' },
        { include: '#brackets' },
        { include: '#punctuation' },
        { include: '#illegal' },
      ],
    },
    parens: {
      comment: 'Inside ( ): a word before `:` names an argument or a hyperparameter, keywords included (`f(for: 1)`).',
      begin: '\\(',
      end: '\\)',
      beginCaptures: { 0: { name: 'punctuation.section.parens.begin.dl' } },
      endCaptures: { 0: { name: 'punctuation.section.parens.end.dl' } },
      patterns: [{ include: '#comments' }, { include: '#strings' }, { include: '#named-argument' }, { include: '#clause-keywords' }, { include: '#expression' }],
    },
    brackets: {
      comment: 'Inside [ ]: a word before `:` is a slice bound (`x[i:j]`), not an argument name.',
      begin: '\\[',
      end: '\\]',
      beginCaptures: { 0: { name: 'punctuation.section.brackets.begin.dl' } },
      endCaptures: { 0: { name: 'punctuation.section.brackets.end.dl' } },
      patterns: [{ include: '#clause-keywords' }, { include: '#expression' }],
    },
    builtins: {
      comment: "The prelude's functions, initializers, optimizers, datasets and layers, and the `training` flag (from compiler/resolve/prelude.ts).",
      patterns: Object.entries(BUILTINS).flatMap(([name, words]) => {
        const word = `(?<!\\.)\\b(?:${alt(words)})\\b`;
        // called, a builtin keeps the scope of a call (`Dense(...)` an instance, `relu(...)` a function call) inside its own
        const call = name.startsWith('support.class') ? 'entity.name.type.instance.dl' : 'entity.name.function.call.dl';
        return [
          { match: `${word}(?=\\s*\\()`, name: `${call} ${name}` },
          { match: `${word}(?!\\s*:(?!:))`, name },
        ];
      }),
    },
    wildcard: {
      comment: 'a parameter path wildcard: `freeze net.*.bn1.*`, `params = [*.b]`',
      match: '(?<=\\.)\\s*\\*(?!\\*)|\\*(?=\\s*\\.(?!\\.))',
      name: 'keyword.operator.wildcard.dl',
    },
    'hard-keywords': {
      patterns: [
        {
          comment: 'forward(x: T) -> U { ... }',
          match: '\\b(forward)\\b',
          name: scopeOf('forward'),
        },
        ...HARD.filter((w) => w !== 'forward').map(hardKeywordPattern),
      ],
    },
    types: {
      patterns: [
        {
          comment: 'f32[B, n]: a tensor type with its shape',
          name: 'meta.type.shape.dl',
          begin: `\\b(${alt(TYPES)})\\s*(\\[)`,
          end: '\\]',
          beginCaptures: { 1: { name: 'storage.type.primitive.dl' }, 2: { name: 'punctuation.section.shape.begin.dl' } },
          endCaptures: { 0: { name: 'punctuation.section.shape.end.dl' } },
          patterns: [{ include: '#shape-dims' }],
        },
        { match: `\\b(${alt(TYPES)})\\b`, name: 'storage.type.primitive.dl' },
      ],
    },
    'shape-dims': {
      patterns: [
        { include: '#comments' },
        { include: '#strings' },
        { match: '\\.\\.\\.', name: 'keyword.operator.ellipsis.dl' },
        { include: '#numbers' },
        { include: '#hard-keywords' },
        { include: '#calls' },
        { match: '\\b[A-Z][A-Za-z0-9_]*\\b', name: 'variable.other.constant.dimension.symbolic.dl' },
        { match: `\\b${IDENT}\\b`, name: 'variable.other.dimension.dl' },
        {
          begin: '\\[',
          end: '\\]',
          beginCaptures: { 0: { name: 'punctuation.section.brackets.begin.dl' } },
          endCaptures: { 0: { name: 'punctuation.section.brackets.end.dl' } },
          patterns: [{ include: '#shape-dims' }],
        },
        {
          begin: '\\(',
          end: '\\)',
          beginCaptures: { 0: { name: 'punctuation.section.parens.begin.dl' } },
          endCaptures: { 0: { name: 'punctuation.section.parens.end.dl' } },
          patterns: [{ include: '#shape-dims' }],
        },
        { include: '#operators' },
        { match: ',', name: 'punctuation.separator.comma.dl' },
        { match: ':', name: 'punctuation.separator.colon.dl' },
        { include: '#illegal' },
      ],
    },
    numbers: {
      patterns: [
        { match: '\\b(?:\\d+\\.\\d+(?:[eE][+-]?\\d+)?|\\d+[eE][+-]?\\d+)\\b', name: 'constant.numeric.float.dl' },
        { match: '\\b\\d+\\b', name: 'constant.numeric.integer.dl' },
      ],
    },
    calls: {
      patterns: [
        { match: `\\b[A-Z][A-Za-z0-9_]*(?=\\s*\\()`, name: 'entity.name.type.instance.dl' },
        { match: `\\b${IDENT}(?=\\s*\\()`, name: 'entity.name.function.call.dl' },
      ],
    },
    'named-argument': {
      comment: 'axis: -1, x: f32[B, n], in: int, for: 1',
      match: `(?<![.\\w])${IDENT}(?=\\s*:)`,
      name: 'variable.parameter.dl',
    },
    member: {
      match: `(?<=[^.]\\.)\\s*${IDENT}\\b`,
      name: 'variable.other.property.dl',
    },
    identifiers: {
      match: `\\b${IDENT}\\b`,
      name: 'variable.other.dl',
    },
    operators: {
      patterns: [
        { match: '->', name: 'keyword.operator.arrow.dl' },
        { match: '=>', name: 'keyword.operator.arrow.fat.dl' },
        { match: '\\.\\.\\.', name: 'keyword.operator.ellipsis.dl' },
        { match: '\\.\\.', name: 'keyword.operator.range.dl' },
        { match: '\\*\\*', name: 'keyword.operator.arithmetic.power.dl' },
        { match: '==|!=|<=|>=|<|>', name: 'keyword.operator.comparison.dl' },
        { match: '=', name: 'keyword.operator.assignment.dl' },
        { match: '@', name: 'keyword.operator.arithmetic.matmul.dl' },
        { match: '[-+*/%]', name: 'keyword.operator.arithmetic.dl' },
      ],
    },
    punctuation: {
      patterns: [
        { match: '\\.', name: 'punctuation.accessor.dl' },
        { match: ',', name: 'punctuation.separator.comma.dl' },
        { match: ':', name: 'punctuation.separator.colon.dl' },
        { match: ';', name: 'punctuation.terminator.statement.dl' },
        { match: '\\(', name: 'punctuation.section.parens.begin.dl' },
        { match: '\\)', name: 'punctuation.section.parens.end.dl' },
        { match: '\\[', name: 'punctuation.section.brackets.begin.dl' },
        { match: '\\]', name: 'punctuation.section.brackets.end.dl' },
        { match: '\\{', name: 'punctuation.section.braces.begin.dl' },
        { match: '\\}', name: 'punctuation.section.braces.end.dl' },
      ],
    },
    illegal: {
      comment: 'characters the lexer rejects',
      match: '[^\\sA-Za-z0-9_+\\-*/%@=!<>.,:;(){}\\[\\]"]|!(?!=)',
      name: 'invalid.illegal.character.dl',
    },
  },
};

const text = JSON.stringify(grammar, null, 2) + '\n';
if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(outPath, 'utf8');
  } catch {
    // missing counts as stale
  }
  if (current !== text) {
    console.error(`${outPath} is stale: run node grammar/vscode/build-grammar.mjs`);
    process.exit(1);
  }
  console.log(`${outPath} is up to date`);
} else {
  writeFileSync(outPath, text);
  const builtins = Object.values(BUILTINS).reduce((n, words) => n + words.length, 0);
  console.log(`wrote ${outPath} (${HARD.length} hard keywords, ${SOFT.length} soft keywords, ${TYPES.length} types, ${builtins} prelude names)`);
}
