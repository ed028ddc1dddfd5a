// The formatter's layout of comments and blank lines, and its line width: each case printed, then printed again unchanged.
import { describe, expect, it } from 'vitest';
import { parse } from '../grammar/parse.ts';
import { print } from '../grammar/printer.ts';
import { stripSpans } from './ast-utils.ts';

/** Formats `text`, checking that it parsed cleanly, that the result means the same and is a fixed point. */
function fmt(text: string): string {
  const { program, diagnostics } = parse(text, 'test.dl');
  expect(diagnostics).toEqual([]);
  const once = print(program);
  const again = parse(once, 'test.dl');
  expect(again.diagnostics).toEqual([]);
  expect(print(again.program)).toBe(once);
  expect(stripAll(again.program)).toEqual(stripAll(program));
  return once;
}

/** The AST without spans or comments: what the program means. */
function stripAll(value: unknown): unknown {
  const bare = stripSpans(value);
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v === null || typeof v !== 'object') return v;
    return Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'trivia' && k !== 'endComments').map(([k, x]) => [k, walk(x)]));
  };
  return walk(bare);
}

describe('blank lines before end comments', () => {
  it('keeps a blank line before the comments at the end of a block and of the file', () => {
    const text = 'model M {\n  input x: f32[B, 4]\n\n  // note at end of block\n}\n\n// commented-out code:\n// model Old {\n//   input x: f32[B, 4]\n// }\n';
    expect(fmt(text)).toBe(text);
  });

  it('drops a blank line at the start of a block that holds only comments, and keeps at most one', () => {
    expect(fmt('model M {\n\n  // only a comment\n\n\n  // and another\n}\n')).toBe('model M {\n  // only a comment\n\n  // and another\n}\n');
  });
});

describe('block comments', () => {
  it('re-indents the further lines of a block comment by the shift of its first line', () => {
    const text = 'layer L(n: int) {\n        /* Weight matrix,\n         * glorot init. */\n        param w: f32[n, n] = zeros\n}\n';
    expect(fmt(text)).toBe('layer L(n: int) {\n  /* Weight matrix,\n   * glorot init. */\n  param w: f32[n, n] = zeros\n}\n');
  });

  it('replaces tab indentation in a block comment, so no tab is left beside the spaces', () => {
    const text = 'model M {\n\tinput x: f32[B, 4]\n\t/* multi\n\t   line\n\n\t   comment */\n\toutput y = x\n}\n';
    expect(fmt(text)).toBe('model M {\n  input x: f32[B, 4]\n  /* multi\n     line\n\n     comment */\n  output y = x\n}\n');
  });

  it('puts a further line that is less indented than the comment at the new indentation', () => {
    const text = 'model M {\n    input x: f32[B, 4]\n    /* a\n  b\nc */\n    output y = x\n}\n';
    expect(fmt(text)).toBe('model M {\n  input x: f32[B, 4]\n  /* a\n  b\n  c */\n  output y = x\n}\n');
  });
});

describe('line width and multi-line lists', () => {
  it('breaks a list that does not fit in 100 columns one item a line, with a trailing comma', () => {
    const text = 'model M(c: int = 8) {\n  layer convs = [Conv2d(1, c, 3, padding: 1), Conv2d(c, 2 * c, 3, stride: 2, padding: 1), Conv2d(2 * c, 4 * c, 3, stride: 2, padding: 1)]\n}\n';
    const out = fmt(text);
    expect(out).toBe('model M(c: int = 8) {\n  layer convs = [\n    Conv2d(1, c, 3, padding: 1),\n    Conv2d(c, 2 * c, 3, stride: 2, padding: 1),\n    Conv2d(2 * c, 4 * c, 3, stride: 2, padding: 1),\n  ]\n}\n');
    expect(Math.max(...out.split('\n').map((l) => l.length))).toBeLessThanOrEqual(100);
  });

  it('keeps a list written one item a line that way, each comment beside its item', () => {
    const text = [
      'layer Net(c: int) {',
      '  layer convs = [',
      '    Conv2d(1, c, 3, padding: 1),          // 28x28',
      '    Conv2d(c, 2 * c, 3, stride: 2, padding: 1), // 14x14',
      '    // the last one halves again',
      '    Conv2d(2 * c, 4 * c, 3, stride: 2)',
      '    // more to come',
      '  ]',
      '}',
      '',
    ].join('\n');
    expect(fmt(text)).toBe([
      'layer Net(c: int) {',
      '  layer convs = [',
      '    Conv2d(1, c, 3, padding: 1), // 28x28',
      '    Conv2d(c, 2 * c, 3, stride: 2, padding: 1), // 14x14',
      '    // the last one halves again',
      '    Conv2d(2 * c, 4 * c, 3, stride: 2),',
      '    // more to come',
      '  ]',
      '}',
      '',
    ].join('\n'));
  });

  it('keeps short calls and hyperparameter lists written multi-line multi-line, and joins those written on one line', () => {
    expect(fmt('fn f(\n  a: int, b: int) -> int = g(a,\n  b)\n')).toBe('fn f(\n  a: int,\n  b: int,\n) -> int = g(a, b)\n');
  });

  it('hugs a multi-line last argument, and breaks `return a, b` after its commas', () => {
    const text = 'fn f(x: f32[B, n]) -> f32[B, n] {\n  let y = stack([\n    x, x], axis: 0)\n  return sum(y * x, axis: batch_axes), sum(y, axis: batch_axes), sum(x, axis: batch_axes), sum(x, axis: 0)\n}\n';
    expect(fmt(text)).toBe('fn f(x: f32[B, n]) -> f32[B, n] {\n  let y = stack([\n    x,\n    x,\n  ], axis: 0)\n  return sum(y * x, axis: batch_axes),\n    sum(y, axis: batch_axes),\n    sum(x, axis: batch_axes),\n    sum(x, axis: 0)\n}\n');
  });

  it('puts a long comprehension inside its brackets on a line of its own, and a one-item tuple keeps its comma', () => {
    const text = 'model M(widths: int[] = [16, 32, 64]) {\n  layer stages = [Stage(widths[max(s - 1, 0)], widths[s], strides[s], depth) for s in 0..len(widths)]\n  let t = (\n    x,)\n}\n';
    expect(fmt(text)).toBe('model M(widths: int[] = [16, 32, 64]) {\n  layer stages = [\n    Stage(widths[max(s - 1, 0)], widths[s], strides[s], depth) for s in 0..len(widths)\n  ]\n  let t = (\n    x,\n  )\n}\n');
  });
});

describe('comments inside lists stay beside what they annotate', () => {
  it('keeps comments among an import list\'s items in the list (which then stays one item a line, without a trailing comma)', () => {
    expect(fmt('use std.nn.{Dense, /* the dense */ Conv2d, // conv\n LayerNorm}\n')).toBe('use std.nn.{\n  Dense,\n  /* the dense */ Conv2d, // conv\n  LayerNorm\n}\n');
    expect(fmt('use "./blocks.dl".{\n  // the block\n  Block as B\n}\n')).toBe('use "./blocks.dl".{\n  // the block\n  Block as B\n}\n');
    expect(fmt('use std.nn.{Dense, Conv2d}\n')).toBe('use std.nn.{Dense, Conv2d}\n');
  });

  it('keeps a block comment written before an argument, after the comma, with that argument', () => {
    const out = fmt('model M {\n  layer d = Dense(4, /* in */ 8 /* out */)\n}\n');
    expect(out).toBe('model M {\n  layer d = Dense(\n    4,\n    /* in */ 8, /* out */\n  )\n}\n');
    // before the comma it still follows the item before
    expect(fmt('model M {\n  layer d = Dense(4 /* in */, 8)\n}\n')).toBe('model M {\n  layer d = Dense(\n    4, /* in */\n    8,\n  )\n}\n');
  });
});

describe('negation', () => {
  it('prints a negated negation as `- -a`, never `--a`', () => {
    expect(fmt('model M {\n  input a: f32[B]\n  output o = -(-a) + - -a + -(+a) - -(-1.0)\n}\n')).toBe('model M {\n  input a: f32[B]\n  output o = - -a + - -a + - +a - - -1.0\n}\n');
  });
});

describe('long lines break where the grammar allows', () => {
  const widest = (text: string) => Math.max(...text.split('\n').map((l) => l.length));

  it('breaks a tensor type\'s dimensions one a line (without a trailing comma, which the grammar has not there)', () => {
    const text = 'layer C(k: int) {\n  forward(x: f32[B, C, H, W]) -> f32[B, C, (H + 2 * k - (k - 1) - 1) / k + 1 + H * H * H * H, (W + 2 * k - (k - 1) - 1) / k + 1] {\n    return x\n  }\n}\n';
    const out = fmt(text);
    expect(out).toBe('layer C(k: int) {\n  forward(x: f32[B, C, H, W]) -> f32[\n    B,\n    C,\n    (H + 2 * k - (k - 1) - 1) / k + 1 + H * H * H * H,\n    (W + 2 * k - (k - 1) - 1) / k + 1\n  ] {\n    return x\n  }\n}\n');
  });

  it('breaks an if-expression\'s branches onto lines of their own, else-if chains together', () => {
    const text = 'model M(another_hyperparameter_name: int = 4) {\n  input a: f32[B, 4]\n  let d = if another_hyperparameter_name > 3 { relu(a) * 1.0 + 2.0 } else if another_hyperparameter_name > 1 { a } else { a }\n  output o = d\n}\n';
    expect(fmt(text)).toBe('model M(another_hyperparameter_name: int = 4) {\n  input a: f32[B, 4]\n  let d = if another_hyperparameter_name > 3 {\n    relu(a) * 1.0 + 2.0\n  } else if another_hyperparameter_name > 1 {\n    a\n  } else {\n    a\n  }\n  output o = d\n}\n');
  });

  it('breaks a chain of operators after each operator before it breaks inside an operand, and index lists one item a line', () => {
    const text =
      'model M(n: int = 4) {\n  input features_of_the_example: f32[B, 784]\n  layer first_fully_connected_layer = Dense(784, 64)\n' +
      '  let a = relu(first_fully_connected_layer(features_of_the_example)) * 0.5 + relu(first_fully_connected_layer(features_of_the_example)) * 2.0 - 1.0\n' +
      '  let e = a[:, 0:another_hyperparameter_name] + a[:, another_hyperparameter_name:another_hyperparameter_name + another_hyperparameter_name] + a\n' +
      '  let s = a[another_hyperparameter_name:another_hyperparameter_name + another_hyperparameter_name, another_hyperparameter_name:another_hyperparameter_name]\n' +
      '  output o = a + e + s + -(-a)\n}\n';
    const out = fmt(text);
    expect(out).toContain('  let a = relu(first_fully_connected_layer(features_of_the_example)) * 0.5 +\n    relu(first_fully_connected_layer(features_of_the_example)) * 2.0 -\n    1.0\n');
    expect(out).toContain('  let s = a[\n    another_hyperparameter_name:another_hyperparameter_name + another_hyperparameter_name,\n    another_hyperparameter_name:another_hyperparameter_name\n  ]\n');
    expect(widest(out)).toBeLessThanOrEqual(100);
  });

  it('prints a chain whose operand broke for the width the same way again (the broken list is then recorded)', () => {
    const call = 'first_fully_connected_layer(features_of_the_example, another_hyperparameter_name, yet_another_hyperparameter)';
    const text = `model M {\n  let a = ${call} * (features_of_the_example - another_hyperparameter_name) + 1.0\n}\n`;
    const once = fmt(text);
    expect(once).toBe('model M {\n  let a = first_fully_connected_layer(\n    features_of_the_example,\n    another_hyperparameter_name,\n    yet_another_hyperparameter,\n  ) *\n    (features_of_the_example - another_hyperparameter_name) +\n    1.0\n}\n');
  });

  it('keeps every long case of the QA report within 100 columns, idempotent and meaning the same', () => {
    const text = [
      'model Long(hidden_dimension_size: int = 128, another_hyperparameter_name: int = 64, yet_another_one: float = 0.5) {',
      '  input features_of_the_example: f32[B, 784]',
      '  let a = features_of_the_example',
      '  let c = a + a + a + a + a + a + a + a + a + a + a + a + a + a + a + a + a + a + a + a + a + a + a + a + a + a + a + a',
      '  let g = [i * 2 for i in 0..another_hyperparameter_name if i % 2 == 0 and i > another_hyperparameter_name / 4 and i != 17]',
      '  let h = [relu(a) * hidden_dimension_size + relu(a) * another_hyperparameter_name + relu(a) * yet_another_one for i in 0..4]',
      '  output very_long_output_name_for_the_probabilities_of_each_class = softmax(a + c + a[:, 0:another_hyperparameter_name], axis: -1)',
      '}',
      '',
    ].join('\n');
    expect(widest(fmt(text))).toBeLessThanOrEqual(100);
  });
});

describe('the standard library and the examples', () => {
  it('are formatted within 100 columns, but for string literals that do not fit on a line of their own (fmt never splits a string)', async () => {
    const { readdirSync, readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const root = join(import.meta.dirname, '..');
    for (const dir of ['stdlib', 'examples']) {
      for (const name of readdirSync(join(root, dir)).filter((n) => n.endsWith('.dl'))) {
        const text = readFileSync(join(root, dir, name), 'utf8');
        expect(fmt(text), `${dir}/${name} is not formatted`).toBe(text);
        const long = text.split('\n').filter((l) => l.length > 100 && !/^\s*"([^"\\]|\\.)*",?$/.test(l));
        expect(long, `${dir}/${name}`).toEqual([]);
      }
    }
  });
});

describe('a member named like a keyword', () => {
  it('`x.layer carry (...) {` is a scan over a member named layer, not a nested layer declaration', () => {
    const text = 'model M {\n  input x: f32[B, 4]\n  let y = scan r in net.layer carry (c = 0.0) {\n    c = c + r\n    yield c\n  }\n  output o = y\n}\n';
    expect(fmt(text)).toBe(text);
  });
});
