// The optimization passes: "before" and "expected after" graphs compared structurally, the verifier after every
// pass, and every example computing the same results in the interpreter once optimized.
import { readFileSync } from 'node:fs';
import { argsOf, EXAMPLE_CASES, type ExampleCase } from './helpers.ts';
import { randomFeeds, seededRandom } from '../compiler/interpret/feeds.ts';
import { describe, expect, it } from 'vitest';
import { parse } from '../grammar/parse.ts';
import { elaborate } from '../compiler/elaborate/elaborate.ts';
import { stdlibModules } from '../compiler/frontend/stdlib.ts';
import { checkSource } from '../compiler/frontend/check.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import { verifyGraph } from '../compiler/ir/verify.ts';
import { printGraph } from '../compiler/ir/print.ts';
import { GraphEditor } from '../compiler/ir/editor.ts';
import { addGradients } from '../compiler/autodiff/grad.ts';
import type { Attrs, DType, Graph, Node, Value } from '../compiler/ir/types.ts';
import { inferOp, isShapeError } from '../compiler/ops/registry.ts';
import { ty } from '../compiler/ops/testing.ts';
import { add, mul, sym } from '../compiler/shapes/dim.ts';
import { attrsEqual, attrsSignature } from '../compiler/optimize/cse.ts';
import { LATE_PASSES, PASSES, batchMatmulSums, batchReduceSums, concatReshapes, cse, dce, dceKeeping, fold, hoistReshapes, joinPaddedSums, oneHotCompares, optimize, selectLabels, simplify, sinkBroadcasts, sortScatters, stackSharedMatmuls, type Pass } from '../compiler/optimize/index.ts';
import { RULES } from '../compiler/optimize/simplify.ts';
import { fuseGraph, kernelCount } from '../compiler/optimize/fusion.ts';

const SEED = Number(process.env.DLC_SEED ?? 20261123);

// ---- a tiny graph builder ---------------------------------------------------------------------------

/** Values get consecutive ids; node k gets the span [k, k + 1) so tests can see spans survive. */
function build(body: (b: ReturnType<typeof builder>) => void): Graph {
  const b = builder();
  body(b);
  return b.graph();
}

function builder() {
  let next = 0;
  const inputs: Graph['inputs'][number][] = [];
  const state: Graph['state'][number][] = [];
  const nodes: Node[] = [];
  const outputs = new Map<string, Value>();
  const losses = new Map<string, Value>();
  const layerCalls: Graph['layerCalls'][number][] = [];
  const span = (k: number) => ({ file: 't.dl', start: k, end: k + 1 });
  const b = {
    input(name: string, type: string): Value {
      const value = { id: next++, type: ty(type), name };
      inputs.push({ name, value, span: span(-1) });
      return value;
    },
    state(path: string, type: string, update: () => Value): void {
      const value = { id: next++, type: ty(type), name: path };
      state.push({ path, value, init: { kind: 'zeros', options: {} }, span: span(-1), get update() { return update(); } });
    },
    op(op: string, ins: readonly Value[], attrs: Attrs = {}): Value {
      const types = inferOp(op, ins.map((v) => v.type), attrs);
      if (isShapeError(types)) throw new Error(`${op}: ${types.message}`);
      const value = { id: next++, type: types[0] };
      nodes.push({ op, inputs: ins, attrs, outputs: [value], span: span(nodes.length) });
      return value;
    },
    full(value: number, shape: readonly (number | string)[] = [], dtype: DType = 'f32'): Value {
      return b.op('full', [], { shape: ty(`${dtype}[${shape.join(', ')}]`).shape, value, dtype });
    },
    out(name: string, v: Value) {
      outputs.set(name, v);
    },
    loss(name: string, v: Value) {
      losses.set(name, v);
    },
    call(path: string, ins: Value[], outs: Value[]) {
      layerCalls.push({ path, layer: 'L', depth: 0, inputs: ins, outputs: outs, span: span(-1) });
    },
    graph(): Graph {
      // state updates are getters so a test can name a value defined after the state buffer
      const st = state.map((s) => ({ ...s, update: s.update }));
      return { name: 'g', inputs, params: [], state: st, nodes, outputs, losses, metrics: new Map(), layerCalls, constraints: [] };
    },
  };
  return b;
}

/** printGraph with values renumbered in order of definition, so graphs equal up to renaming print the same. */
function canon(g: Graph): string {
  const ids = new Map<number, number>();
  const def = (v: Value) => ids.has(v.id) || ids.set(v.id, ids.size);
  [...g.inputs, ...g.params, ...g.state].forEach((x) => def(x.value));
  g.nodes.forEach((n) => n.outputs.forEach(def));
  const calls = g.layerCalls.map((c) => `  call ${c.path}(${c.inputs.map((v) => `%${v.id}`).join(', ')}) -> ${c.outputs.map((v) => `%${v.id}`).join(', ')}`);
  const text = [printGraph(g), ...calls].join('\n');
  return text.replace(/%(\d+)/g, (_, id: string) => `%${ids.get(Number(id)) ?? `undefined${id}`}`);
}

/** Runs a pass, checks the verifier on what it returns, and compares with the expected graph. */
function expectPass(pass: Pass, before: Graph, after: Graph): Graph {
  expect(verifyGraph(before)).toEqual([]);
  const got = pass(before);
  expect(verifyGraph(got)).toEqual([]);
  expect(canon(got)).toEqual(canon(after));
  return got;
}

// ---- dce --------------------------------------------------------------------------------------------

describe('dce', () => {
  it('keeps what outputs, losses and state updates need, and the whole interface', () => {
    const before = build((b) => {
      const x = b.input('x', 'f32[B, 3]');
      b.input('unused', 'f32[2]');
      const e = b.op('exp', [x]);
      b.op('log', [x]); // dead
      const s = b.op('reduce_sum', [e], { axes: [0, 1] });
      let upd: Value;
      b.state('stat', 'f32[3]', () => upd);
      upd = b.op('reduce_sum', [x], { axes: [0] });
      b.op('neg', [upd]); // dead
      b.out('e', e);
      b.loss('s', s);
      b.call('dead_layer', [x], [b.op('tanh', [x])]); // dead, and so is its layer call
      b.call('live_layer', [x], [e]);
    });
    const after = build((b) => {
      const x = b.input('x', 'f32[B, 3]');
      b.input('unused', 'f32[2]');
      const e = b.op('exp', [x]);
      const s = b.op('reduce_sum', [e], { axes: [0, 1] });
      let upd: Value;
      b.state('stat', 'f32[3]', () => upd);
      upd = b.op('reduce_sum', [x], { axes: [0] });
      b.out('e', e);
      b.loss('s', s);
      b.call('live_layer', [x], [e]);
    });
    const got = expectPass(dce, before, after);
    expect(got.nodes.map((n) => n.span.start)).toEqual([0, 2, 3]);
  });

  it('keeps extra roots the caller names, and returns the graph itself when nothing is dead', () => {
    const g = build((b) => {
      const x = b.input('x', 'f32[3]');
      b.out('y', b.op('exp', [x]));
      b.op('log', [x]);
    });
    expect(dce(g).nodes.map((n) => n.op)).toEqual(['exp']);
    const kept = dceKeeping(g, [g.nodes[1].outputs[0].id]);
    expect(kept).toBe(g);
    const once = dce(g);
    expect(dce(once)).toBe(once);
  });
});

// ---- cse --------------------------------------------------------------------------------------------

describe('cse', () => {
  it('merges equal nodes and remaps outputs, state updates and layer calls', () => {
    const before = build((b) => {
      const x = b.input('x', 'f32[B, 3]');
      const a1 = b.op('exp', [x]);
      const a2 = b.op('exp', [x]);
      const c1 = b.full(2, ['B', 3]);
      const c2 = b.op('full', [], { value: 2, dtype: 'f32', shape: ty('f32[B, 3]').shape }); // attributes in another order
      const m1 = b.op('mul', [a1, c1]);
      const m2 = b.op('mul', [a2, c2]); // equal once a2 = a1 and c2 = c1
      let u: Value;
      b.state('s', 'f32[B, 3]', () => u);
      u = m2;
      b.out('m1', m1);
      b.out('m2', m2);
      b.call('l', [a2], [m2]);
    });
    const after = build((b) => {
      const x = b.input('x', 'f32[B, 3]');
      const a1 = b.op('exp', [x]);
      const c1 = b.full(2, ['B', 3]);
      const m1 = b.op('mul', [a1, c1]);
      b.state('s', 'f32[B, 3]', () => m1);
      b.out('m1', m1);
      b.out('m2', m1);
      b.call('l', [a1], [m1]);
    });
    expectPass(cse, before, after);
  });

  it('keeps nodes whose attributes or operand order differ', () => {
    const g = build((b) => {
      const x = b.input('x', 'f32[4, 3]');
      const y = b.input('y', 'f32[4, 3]');
      b.out('a', b.op('reduce_sum', [x], { axes: [0] }));
      b.out('b', b.op('reduce_sum', [x], { axes: [1] }));
      b.out('c', b.op('sub', [x, y]));
      b.out('d', b.op('sub', [y, x]));
      b.out('e', b.full(0));
      b.out('f', b.full(-0)); // 1 / x tells them apart
    });
    expect(cse(g)).toBe(g);
  });

  it('merges random draws only when the attributes are identical, stream included', () => {
    const g = build((b) => {
      const key = b.input('key', 'u32[]');
      b.out('a', b.op('random_uniform', [key], { shape: [3], stream: 1 }));
      b.out('b', b.op('random_uniform', [key], { shape: [3], stream: 2 }));
      b.out('c', b.op('random_uniform', [key], { shape: [3] }));
      b.out('d', b.op('random_uniform', [key], { shape: [3], stream: 0 })); // the default, but not written the same
      b.out('e', b.op('random_normal', [key], { shape: [3], stream: 1 }));
      b.out('f', b.op('random_uniform', [key], { shape: [3], stream: 1 })); // the same draw as a
    });
    const got = cse(g);
    expect(verifyGraph(got)).toEqual([]);
    expect(got.nodes.length).toBe(5);
    expect(got.outputs.get('f')).toBe(got.outputs.get('a'));
    expect(new Set(['a', 'b', 'c', 'd', 'e'].map((k) => got.outputs.get(k)!.id)).size).toBe(5);
  });
});

describe('cse signatures', () => {
  const B = sym('B');
  it('tell symbolic sizes apart by normal form, so the row blocks of an unrolled recurrence fall in buckets of one', () => {
    const block = (t: number) => ({ starts: [mul(B, t), 0], stops: [mul(B, t + 1), null] });
    const signatures = new Set(Array.from({ length: 64 }, (_, t) => attrsSignature(block(t))));
    expect(signatures.size).toBe(64);
    // equal sizes written two ways share one: attrsEqual implies equal signatures
    const twice = { starts: [add(B, B), 0], stops: [mul(B, 3), null] };
    expect(attrsEqual(twice, block(2))).toBe(true);
    expect(attrsSignature(twice)).toBe(attrsSignature(block(2)));
  });

  it('still merges equal slices at symbolic offsets, and keeps different ones', () => {
    const g = build((b) => {
      const x = b.input('x', 'f32[4 * B, 3]');
      for (const [name, t] of [['a', 1], ['b', 2], ['c', 1]] as const) b.out(name, b.op('slice', [x], { starts: [mul(B, t), 0], stops: [mul(B, t + 1), null] }));
    });
    const got = cse(g);
    expect(verifyGraph(got)).toEqual([]);
    expect(got.nodes.length).toBe(2);
    expect(got.outputs.get('c')).toBe(got.outputs.get('a'));
  });
});

// ---- fold -------------------------------------------------------------------------------------------

describe('fold', () => {
  it('evaluates uniform constants: full(2) * full(3) -> full(6), exp(full(0)) -> full(1), in a chain', () => {
    const before = build((b) => {
      const x = b.input('x', 'f32[B, 3]');
      const six = b.op('mul', [b.full(2, [3]), b.full(3)]);
      const one = b.op('exp', [b.full(0)]);
      const seven = b.op('add', [six, one]);
      const k = b.op('cast', [b.full(2.7, [], 'f32')], { dtype: 'i32' });
      b.out('y', b.op('mul', [x, seven]));
      b.out('k', k);
    });
    const after = build((b) => {
      const x = b.input('x', 'f32[B, 3]');
      b.full(2, [3]);
      b.full(3);
      b.full(6, [3]);
      b.full(0);
      b.full(1);
      const seven = b.full(7, [3]);
      b.full(2.7);
      const k = b.full(2, [], 'i32');
      b.out('y', b.op('mul', [x, seven]));
      b.out('k', k);
    });
    const got = expectPass(fold, before, after);
    // every node keeps its place, id and span; dce then drops the constants that were folded away
    expect(got.nodes.map((n) => n.span)).toEqual(before.nodes.map((n) => n.span));
    expect(got.nodes.map((n) => n.outputs[0].id)).toEqual(before.nodes.map((n) => n.outputs[0].id));
    expect(dce(got).nodes.map((n) => n.op)).toEqual(['full', 'full', 'mul']);
  });

  it('leaves non-uniform, large, symbolic and random results alone', () => {
    const g = build((b) => {
      b.out('iota', b.op('add', [b.op('iota', [], { shape: [4] }), b.full(1, [4], 'i32')])); // not uniform
      b.out('big', b.op('exp', [b.full(0, [2000])]));
      b.out('sym', b.op('exp', [b.full(0, ['B'])]));
      b.out('rnd', b.op('random_uniform', [b.full(7, [], 'u32')], { shape: [] }));
    });
    expect(fold(g)).toBe(g);
  });

  it('folds a uniform constant to the expected-after graph', () => {
    const before = build((b) => {
      b.out('y', b.op('exp', [b.full(0, [2, 2])]));
    });
    const after = build((b) => {
      b.full(0, [2, 2]);
      b.out('y', b.full(1, [2, 2]));
    });
    expectPass(fold, before, after);
  });
});

// ---- simplify ---------------------------------------------------------------------------------------

describe('simplify', () => {
  const cases: { name: string; before: (b: ReturnType<typeof builder>) => void; after: (b: ReturnType<typeof builder>) => void }[] = [
    {
      name: 'x * 1, 1 * x, x + 0, 0 + x, x - 0, x / 1 -> x',
      before: (b) => {
        const x = b.input('x', 'f32[B, 3]');
        const one = b.full(1);
        const zero = b.full(0, [3]);
        const y = b.op('div', [b.op('sub', [b.op('add', [b.full(0), b.op('add', [b.op('mul', [one, b.op('mul', [x, one])]), zero])]), zero]), one]);
        b.out('y', y);
      },
      after: (b) => {
        const x = b.input('x', 'f32[B, 3]');
        b.full(1);
        b.full(0, [3]);
        b.full(0);
        b.out('y', x);
      },
    },
    {
      name: 'x ** 1 -> x and x ** 2 -> x * x (one correctly rounded product); x ** 3 and a broadcasting 2 are kept',
      before: (b) => {
        const x = b.input('x', 'f32[B, 3]');
        const two = b.full(2);
        b.out('y', b.op('pow', [b.op('pow', [x, b.full(1)]), two]));
        b.out('cube', b.op('pow', [x, b.full(3)]));
        b.out('wide', b.op('pow', [b.full(5), b.full(2, [4])]));
      },
      after: (b) => {
        const x = b.input('x', 'f32[B, 3]');
        b.full(2);
        b.full(1);
        b.out('y', b.op('mul', [x, x]));
        b.out('cube', b.op('pow', [x, b.full(3)]));
        b.out('wide', b.op('pow', [b.full(5), b.full(2, [4])]));
      },
    },
    {
      name: "a whole slice (b[None, :, None, None]'s b[:]) is x; a slice from 1, by 2, or to a shorter stop is kept",
      before: (b) => {
        const x = b.input('x', 'f32[B, 6]');
        b.out('whole', b.op('reshape', [b.op('slice', [x], { starts: [0, 0], stops: [null, null], steps: [1, 1] })], { shape: ty('f32[B, 1, 6]').shape }));
        b.out('from1', b.op('slice', [x], { starts: [0, 1], stops: [null, null] }));
        b.out('by2', b.op('slice', [x], { starts: [0, 0], stops: [null, null], steps: [1, 2] }));
        b.out('short', b.op('slice', [x], { starts: [0, 0], stops: [null, 4] }));
      },
      after: (b) => {
        const x = b.input('x', 'f32[B, 6]');
        b.out('whole', b.op('reshape', [x], { shape: ty('f32[B, 1, 6]').shape }));
        b.out('from1', b.op('slice', [x], { starts: [0, 1], stops: [null, null] }));
        b.out('by2', b.op('slice', [x], { starts: [0, 0], stops: [null, null], steps: [1, 2] }));
        b.out('short', b.op('slice', [x], { starts: [0, 0], stops: [null, 4] }));
      },
    },
    {
      name: 'a broadcasting identity is kept: x[3] * 1[2, 3] changes the shape',
      before: (b) => {
        const x = b.input('x', 'f32[3]');
        b.out('y', b.op('mul', [x, b.full(1, [2, 3])]));
      },
      after: (b) => {
        const x = b.input('x', 'f32[3]');
        b.out('y', b.op('mul', [x, b.full(1, [2, 3])]));
      },
    },
    {
      name: 'integer x * 0 -> zeros; float x * 0 is kept (NaN * 0 is NaN)',
      before: (b) => {
        const i = b.input('i', 'i32[B]');
        const f = b.input('f', 'f32[B]');
        b.out('i', b.op('mul', [i, b.full(0, [], 'i32')]));
        b.out('f', b.op('mul', [f, b.full(0)]));
      },
      after: (b) => {
        b.input('i', 'i32[B]');
        const f = b.input('f', 'f32[B]');
        b.full(0, [], 'i32');
        b.out('i', b.full(0, ['B'], 'i32'));
        b.out('f', b.op('mul', [f, b.full(0)]));
      },
    },
    {
      name: 'transpose(transpose(x, p), q) -> transpose(x, p . q), or x when that is the identity',
      before: (b) => {
        const x = b.input('x', 'f32[2, 3, 4]');
        const t = b.op('transpose', [x], { perm: [1, 2, 0] }); // [3, 4, 2]
        b.out('y', b.op('transpose', [t], { perm: [1, 0, 2] })); // [4, 3, 2]
        b.out('x', b.op('transpose', [t], { perm: [2, 0, 1] })); // back to [2, 3, 4]
      },
      after: (b) => {
        const x = b.input('x', 'f32[2, 3, 4]');
        b.op('transpose', [x], { perm: [1, 2, 0] });
        b.out('y', b.op('transpose', [x], { perm: [2, 1, 0] }));
        b.out('x', x);
      },
    },
    {
      name: 'reshape(reshape(x)) -> reshape(x); reshape, broadcast_to and cast to the same type -> x',
      before: (b) => {
        const x = b.input('x', 'f32[B, 6]');
        const r = b.op('reshape', [x], { shape: [sym('B'), 2, 3] });
        b.out('flat', b.op('reshape', [r], { shape: [-1] }));
        b.out('back', b.op('reshape', [r], { shape: [sym('B'), -1] }));
        b.out('same', b.op('broadcast_to', [b.op('cast', [x], { dtype: 'f32' })], { shape: [sym('B'), 6] }));
        b.out('wider', b.op('broadcast_to', [x], { shape: [2, sym('B'), 6] }));
      },
      after: (b) => {
        const x = b.input('x', 'f32[B, 6]');
        b.op('reshape', [x], { shape: [sym('B'), 2, 3] });
        // the outer node's resolved shape: its -1 was relative to the inner reshape
        b.out('flat', b.op('reshape', [x], { shape: [mul(sym('B'), 6)] }));
        b.out('back', x);
        b.out('same', x);
        b.out('wider', b.op('broadcast_to', [x], { shape: [2, sym('B'), 6] }));
      },
    },
    {
      name: 'stop_gradient(x) -> x (optimize runs after autodiff, where it is the identity)',
      before: (b) => {
        const x = b.input('x', 'f32[B, 3]');
        b.out('y', b.op('exp', [b.op('stop_gradient', [x])]));
      },
      after: (b) => {
        const x = b.input('x', 'f32[B, 3]');
        b.out('y', b.op('exp', [x]));
      },
    },
    {
      name: 'a sum or max over axes of size 1 is a reshape (keepdims or not); over a size that may differ from 1 it stays',
      before: (b) => {
        const x = b.input('x', 'f32[B, 1, 3]');
        b.out('sum', b.op('reduce_sum', [x], { axes: [1] }));
        b.out('max', b.op('reduce_max', [x], { axes: [1], keepdims: true }));
        b.out('kept', b.op('reduce_sum', [x], { axes: [0] }));
      },
      after: (b) => {
        const x = b.input('x', 'f32[B, 1, 3]');
        b.out('sum', b.op('reshape', [x], { shape: [sym('B'), 3] }));
        b.out('max', x);
        b.out('kept', b.op('reduce_sum', [x], { axes: [0] }));
      },
    },
    {
      name: 'neg(neg(x)) -> x, through a chain of four',
      before: (b) => {
        const x = b.input('x', 'i32[3]');
        b.out('y', b.op('neg', [b.op('neg', [b.op('neg', [b.op('neg', [x])])])]));
      },
      after: (b) => {
        const x = b.input('x', 'i32[3]');
        b.op('neg', [x]);
        b.op('neg', [x]);
        b.out('y', x);
      },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expectPass(simplify, build(c.before), build(c.after));
    });
  }

  it('keeps the span of a node it rewrites in place, and lists every pattern in its table', () => {
    const g = build((b) => {
      const x = b.input('x', 'f32[2, 3, 4]');
      const t = b.op('transpose', [x], { perm: [1, 0, 2] });
      b.out('y', b.op('transpose', [t], { perm: [0, 2, 1] }));
    });
    const got = simplify(g);
    expect(verifyGraph(got)).toEqual([]);
    const y = got.nodes.find((n) => n.outputs[0] === got.outputs.get('y'))!;
    expect(y.inputs[0].id).toBe(g.inputs[0].value.id);
    expect(y.attrs.perm).toEqual([1, 2, 0]);
    expect(y.span).toEqual(g.nodes[1].span);
    expect(RULES.map((r) => r.name)).toEqual([
      'x * 1 -> x',
      '1 * x -> x',
      'x * 0 -> 0 (integers)',
      'x + 0 -> x',
      '0 + x -> x',
      'x - 0 -> x',
      'x / 1 -> x',
      'x ** 1 -> x',
      'x ** 2 -> x * x',
      'neg(neg(x)) -> x',
      'stop_gradient(x) -> x',
      'cast(x: t, t) -> x',
      'transpose(transpose(x, p), q) -> transpose(x, p . q), or x',
      'transpose(x, identity) -> x',
      'reshape(x: s, s) -> x',
      'reshape(reshape(x)) -> reshape(x)',
      'broadcast_to(x: s, s) -> x',
      'slice(x: s, from 0 by 1) -> x when the result is s',
      'reduce_sum(x, axes of size 1) -> reshape(x)',
      'reduce_max(x, axes of size 1) -> reshape(x)',
    ]);
  });
});

// ---- the pipeline -----------------------------------------------------------------------------------

describe('sink-broadcasts', () => {
  const cases: { name: string; before: (b: ReturnType<typeof builder>) => void; after: (b: ReturnType<typeof builder>) => void }[] = [
    {
      name: 'an elementwise operand reads the unbroadcast value where the result type stays, else the op broadcasts after',
      before: (b) => {
        const a = b.input('a', 'f32[B, 3]');
        const x = b.input('x', 'f32[3]');
        const y = b.input('y', 'f32[3]');
        b.out('dropped', b.op('mul', [a, b.op('broadcast_to', [x], { shape: [sym('B'), 3] })]));
        // both operands are [3] without it: the sum is [3], broadcast to [2, 3] after
        b.out('after', b.op('add', [b.op('broadcast_to', [x], { shape: [2, 3] }), y]));
      },
      after: (b) => {
        const a = b.input('a', 'f32[B, 3]');
        const x = b.input('x', 'f32[3]');
        const y = b.input('y', 'f32[3]');
        b.op('broadcast_to', [x], { shape: [sym('B'), 3] });
        b.out('dropped', b.op('mul', [a, x]));
        b.op('broadcast_to', [x], { shape: [2, 3] });
        b.out('after', b.op('broadcast_to', [b.op('add', [x, y])], { shape: [2, 3] }));
      },
    },
    {
      name: 'a one-operand op computes before the broadcast: neg(broadcast_to(s)) -> broadcast_to(neg(s))',
      before: (b) => {
        const s = b.input('s', 'f32[]');
        b.out('y', b.op('neg', [b.op('broadcast_to', [s], { shape: [sym('B')] })]));
      },
      after: (b) => {
        const s = b.input('s', 'f32[]');
        b.op('broadcast_to', [s], { shape: [sym('B')] });
        b.out('y', b.op('broadcast_to', [b.op('neg', [s])], { shape: [sym('B')] }));
      },
    },
    {
      name: 'reshapes around a broadcast of one element fold into it; of more elements they stay',
      before: (b) => {
        const s = b.input('s', 'f32[]');
        const x = b.input('x', 'f32[3]');
        const one = b.op('reshape', [s], { shape: [1] });
        b.out('after', b.op('reshape', [b.op('broadcast_to', [one], { shape: [sym('B')] })], { shape: [sym('B'), 1] }));
        b.out('before', b.op('broadcast_to', [one], { shape: [2, sym('B')] }));
        b.out('kept', b.op('reshape', [b.op('broadcast_to', [x], { shape: [2, 3] })], { shape: [3, 2] }));
        b.out('twice', b.op('broadcast_to', [b.op('broadcast_to', [x], { shape: [2, 3] })], { shape: [4, 2, 3] }));
      },
      after: (b) => {
        const s = b.input('s', 'f32[]');
        const x = b.input('x', 'f32[3]');
        // the broadcast of the reshape reads s itself, and so does the reshape after it, in one pass
        b.op('reshape', [s], { shape: [1] });
        b.op('broadcast_to', [s], { shape: [sym('B')] });
        b.out('after', b.op('broadcast_to', [s], { shape: [sym('B'), 1] }));
        b.out('before', b.op('broadcast_to', [s], { shape: [2, sym('B')] }));
        b.out('kept', b.op('reshape', [b.op('broadcast_to', [x], { shape: [2, 3] })], { shape: [3, 2] }));
        b.op('broadcast_to', [x], { shape: [2, 3] });
        b.out('twice', b.op('broadcast_to', [x], { shape: [4, 2, 3] }));
      },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const before = build(c.before);
      const got = expectPass(sinkBroadcasts, before, build(c.after));
      const sizes = new Map([['B', 3]]);
      const feeds = randomFeeds(before, sizes, seededRandom(SEED));
      const want = interpretGraph(before, feeds, { sizes });
      const have = interpretGraph(got, feeds, { sizes });
      for (const [name, t] of want.outputs) expect(closeEnough(have.outputs.get(name)!, t), name).toBe(true);
    });
  }

  it("a mean's gradient chain (1/B broadcast, negated, reshaped, times one-hot rows) becomes one product with a scalar", () => {
    const before = build((b) => {
      const hot = b.input('hot', 'f32[B, 10]');
      const seed = b.op('div', [b.full(1), b.full(sym('B') as unknown as number)]);
      const wide = b.op('broadcast_to', [b.op('reshape', [seed], { shape: [1] })], { shape: [sym('B')] });
      const ct = b.op('reshape', [b.op('neg', [wide])], { shape: [sym('B'), 1] });
      b.out('grad', b.op('mul', [hot, ct]));
    });
    const got = optimize(before);
    expect(verifyGraph(got)).toEqual([]);
    expect(got.nodes.map((n) => n.op)).toEqual(['full', 'full', 'div', 'neg', 'mul']);
    const sizes = new Map([['B', 4]]);
    const feeds = randomFeeds(before, sizes, seededRandom(SEED));
    expect(closeEnough(interpretGraph(got, feeds, { sizes }).outputs.get('grad')!, interpretGraph(before, feeds, { sizes }).outputs.get('grad')!)).toBe(true);
  });
});

describe('select-labels', () => {
  const labelGraph = (withRowRead: boolean) =>
    build((b) => {
      const x = b.input('x', 'f32[B, 5]');
      const labels = b.input('labels', 'i32[B]');
      const picked = b.op('take_along_axis', [x, b.op('reshape', [labels], { shape: [sym('B'), 1] })], { axis: 1 });
      b.out('picked', b.op('reshape', [picked], { shape: [sym('B')] }));
      if (withRowRead) b.out('max', b.op('reduce_max', [x], { axes: [1], keepdims: true }));
    });

  it('a label gather beside a reduction over the same row becomes a one-hot select summed over the row', () => {
    const g = labelGraph(true);
    const got = selectLabels(g);
    expect(verifyGraph(got)).toEqual([]);
    expect(got.nodes.map((n) => n.op)).toEqual(['reshape', 'reshape', 'one_hot', 'full', 'select', 'reduce_sum', 'reshape', 'reshape', 'reduce_max']);
    expect(got.nodes.find((n) => n.op === 'one_hot')!.attrs).toEqual({ depth: 5, dtype: 'bool', clamp: true });
    // the same values: out-of-range labels clamp, and NaN or infinity elsewhere in a row stays out
    const sizes = new Map([['B', 4]]);
    const x = tensor('f32', [4, 5], [1, 2, 3, 4, 5, -1, NaN, -3, Infinity, 0.5, 7, 8, -Infinity, 9, 10, 0.25, -0.5, 1.5, 2.5, 3.5]);
    const labels = tensor('i32', [4], [2, 4, -3, 9]);
    const feeds = { inputs: new Map([['x', x], ['labels', labels]]), params: new Map(), state: new Map() };
    const want = interpretGraph(g, feeds, { sizes }).outputs.get('picked')!;
    expect([...want.data]).toEqual([3, 0.5, 7, 3.5]);
    expect([...interpretGraph(got, feeds, { sizes }).outputs.get('picked')!.data]).toEqual([...want.data]);
    // and optimize, to its fixed point, keeps it
    expect(optimize(g).nodes.some((n) => n.op === 'take_along_axis')).toBe(false);
  });

  it('a gather with no reduction reading its rows stays a gather (it reads one element per row, the select would read them all)', () => {
    const g = labelGraph(false);
    expect(selectLabels(g)).toBe(g);
  });
});

describe('sort-scatters', () => {
  // two tables gathered by the same tokens (an embedding and its output projection, say), and their gradients
  const scatterGraph = () =>
    build((b) => {
      const tokens = b.input('tokens', 'i32[B, T]');
      const g1 = b.input('g1', 'f32[B, T, 3]');
      const g2 = b.input('g2', 'f32[2, B, T]');
      b.out('d1', b.op('scatter_add', [g1, tokens], { axis: 0, size: 5 }));
      b.out('d2', b.op('scatter_add', [g2, tokens], { axis: 1, size: 5 }));
    });

  it('a scatter_add becomes index_order and sorted_scatter_add, with the same values bit for bit; one order serves both', () => {
    const g = scatterGraph();
    const got = sortScatters(g);
    expect(verifyGraph(got)).toEqual([]);
    expect(got.nodes.map((n) => n.op)).toEqual(['index_order', 'sorted_scatter_add', 'index_order', 'sorted_scatter_add']);
    const optimized = optimize(g);
    expect(optimized.nodes.map((n) => n.op).sort()).toEqual(['index_order', 'sorted_scatter_add', 'sorted_scatter_add']);
    const sizes = new Map([['B', 3], ['T', 4]]);
    const random = seededRandom(SEED);
    const tokens = tensor('i32', [3, 4], Array.from({ length: 12 }, () => Math.floor(random() * 9) - 2));
    const g1 = tensor('f32', [3, 4, 3], Array.from({ length: 36 }, () => random() - 0.5));
    const g2 = tensor('f32', [2, 3, 4], Array.from({ length: 24 }, () => random() - 0.5));
    const feeds = { inputs: new Map([['tokens', tokens], ['g1', g1], ['g2', g2]]), params: new Map(), state: new Map() };
    const want = interpretGraph(g, feeds, { sizes }).outputs;
    const have = interpretGraph(optimized, feeds, { sizes }).outputs;
    for (const name of ['d1', 'd2']) expect([...have.get(name)!.data], name).toEqual([...want.get(name)!.data]);
  });

  it('a graph without scatter_add is returned as it is', () => {
    const g = build((b) => b.out('y', b.op('neg', [b.input('x', 'f32[2]')])));
    expect(sortScatters(g)).toBe(g);
  });
});

/** Random feeds for a graph of f32 inputs, every symbolic size 2. */
function feedsAt2(g: Graph, seed: number) {
  const random = seededRandom(seed);
  const inputs = new Map(
    g.inputs.map((i) => {
      const shape = i.value.type.shape.map((d) => (typeof d === 'number' ? d : 2));
      return [i.name, tensor('f32', shape, Array.from({ length: shape.reduce((p, q) => p * q, 1) }, () => random() - 0.5))];
    }),
  );
  return { inputs, params: new Map(), state: new Map() };
}

/** The outputs of `got` against those of `g`, within `digits` decimal digits (the same bits at Infinity). */
function expectSameOutputs(g: Graph, got: Graph, seed: number, digits = Infinity) {
  const sizes = new Map([['B', 2]]);
  const want = interpretGraph(g, feedsAt2(g, seed), { sizes }).outputs;
  const have = interpretGraph(got, feedsAt2(g, seed), { sizes }).outputs;
  for (const [k, t] of want) {
    expect(have.get(k)!.shape, k).toEqual(t.shape);
    if (digits === Infinity) expect([...have.get(k)!.data].map((v) => v + 0), k).toEqual([...t.data].map((v) => v + 0));
    else have.get(k)!.data.forEach((v, i) => expect(v, k).toBeCloseTo(t.data[i], digits));
  }
}

describe('batch-matmul-sums', () => {
  /** A recurrence's weight gradient: Σ_t h_tᵀ dz_t over `steps` steps, plus a bias-like extra term. */
  const sumGraph = (steps: number, extra: boolean) =>
    build((b) => {
      const terms: Value[] = [];
      for (let t = 0; t < steps; t++) {
        const h = b.input(`h${t}`, 'f32[B, 3]');
        const dz = b.input(`dz${t}`, 'f32[B, 4]');
        // one step's term reads its operand through matmul's transpose_a attribute, the others through a transpose
        terms.push(t === 1 ? b.op('matmul', [h, dz], { transpose_a: true }) : b.op('matmul', [b.op('transpose', [h], { perm: [1, 0] }), dz]));
      }
      if (extra) terms.push(b.input('w', 'f32[3, 4]'));
      b.out('dw', terms.reduce((acc, v) => b.op('add', [acc, v])));
    });

  it('a sum of 5 terms h_tᵀ dz_t becomes one matmul over the stacked steps, plus the other terms; the same values up to rounding', () => {
    const g = sumGraph(5, true);
    const got = optimize(g);
    expect(verifyGraph(got)).toEqual([]);
    expect(got.nodes.map((n) => n.op)).toEqual(['concat', 'concat', 'transpose', 'matmul', 'add']);
    expectSameOutputs(g, got, SEED, 12);
  });

  it('fewer than 4 terms, or terms read elsewhere, stay as they are', () => {
    const three = sumGraph(3, false);
    expect(batchMatmulSums(three)).toBe(three);
    // the same sum with each term also returned: none may be replaced
    const shared = build((b) => {
      const terms = Array.from({ length: 5 }, (_, t) => b.op('matmul', [b.input(`h${t}`, 'f32[2, 3]'), b.input(`dz${t}`, 'f32[2, 4]')], { transpose_a: true }));
      terms.forEach((v, t) => b.out(`term${t}`, v));
      b.out('dw', terms.reduce((acc, v) => b.op('add', [acc, v])));
    });
    expect(batchMatmulSums(shared)).toBe(shared);
  });
});

describe('batch-reduce-sums', () => {
  /** A recurrence's bias gradient: Σ_t sum_0(dz_t) over `steps` steps, plus an extra term. */
  const sumGraph = (steps: number, extra: boolean) =>
    build((b) => {
      const terms: Value[] = [];
      for (let t = 0; t < steps; t++) terms.push(b.op('reduce_sum', [b.input(`dz${t}`, 'f32[B, 4]')], { axes: [0], keepdims: false }));
      if (extra) terms.push(b.input('b', 'f32[4]'));
      b.out('db', terms.reduce((acc, v) => b.op('add', [acc, v])));
    });

  it('a sum of 5 terms sum_0(dz_t) becomes one reduction over the stacked steps, plus the other terms; the same values up to rounding', () => {
    const g = sumGraph(5, true);
    const got = optimize(g);
    expect(verifyGraph(got)).toEqual([]);
    expect(got.nodes.map((n) => n.op)).toEqual(['concat', 'reduce_sum', 'add']);
    expectSameOutputs(g, got, SEED, 12);
  });

  it("terms that are the same slab of concats along a kept axis (a gate's share of dz_t) sum that slab of the concats stacked, which cse shares with the whole sum", () => {
    const g = build((b) => {
      const gates: Value[] = [];
      const wholes: Value[] = [];
      for (let t = 0; t < 4; t++) {
        const f = b.op('tanh', [b.input(`f${t}`, 'f32[B, 2]')]);
        gates.push(b.op('reduce_sum', [f], { axes: [0], keepdims: false }));
        const dz = b.op('concat', [b.input(`i${t}`, 'f32[B, 2]'), f, b.input(`o${t}`, 'f32[B, 3]')], { axis: 1 });
        wholes.push(b.op('reduce_sum', [dz], { axes: [0], keepdims: false }));
        b.out(`dz${t}`, dz);
      }
      b.out('db_f', gates.reduce((acc, v) => b.op('add', [acc, v])));
      b.out('db', wholes.reduce((acc, v) => b.op('add', [acc, v])));
    });
    const got = optimize(g);
    expect(verifyGraph(got)).toEqual([]);
    // the four gate sums read only their concats now, and one stacking of the concats serves both sums
    expect(got.nodes.filter((n) => n.op === 'reduce_sum')).toHaveLength(2);
    const stacked = got.nodes.filter((n) => n.op === 'concat' && n.attrs.axis === 0);
    expect(stacked).toHaveLength(1);
    const slice = got.nodes.find((n) => n.op === 'slice')!;
    expect(slice.inputs[0].id).toBe(stacked[0].outputs[0].id);
    expect(slice.attrs.starts).toEqual([0, 2]);
    expectSameOutputs(g, got, SEED + 1, 12);
  });

  it('fewer than 4 terms, terms read elsewhere, or terms over different axes stay as they are', () => {
    const three = sumGraph(3, false);
    expect(optimize(three).nodes.filter((n) => n.op === 'reduce_sum')).toHaveLength(3);
    const shared = build((b) => {
      const terms = Array.from({ length: 5 }, (_, t) => b.op('reduce_sum', [b.input(`dz${t}`, 'f32[2, 4]')], { axes: [0], keepdims: false }));
      terms.forEach((v, t) => b.out(`term${t}`, v));
      b.out('db', terms.reduce((acc, v) => b.op('add', [acc, v])));
    });
    expect(batchReduceSums(shared)).toBe(shared);
    // sums over the last axis: stacking along axis 0 would not give the sum
    const rows = build((b) => {
      const terms = Array.from({ length: 5 }, (_, t) => b.op('reduce_sum', [b.input(`x${t}`, 'f32[4, 2]')], { axes: [1], keepdims: false }));
      b.out('s', terms.reduce((acc, v) => b.op('add', [acc, v])));
    });
    expect(batchReduceSums(rows)).toBe(rows);
  });
});

describe('join-padded-sums', () => {
  /** The cotangent of a [B, steps, 3] sequence read slice by slice by two readers, their blocks added in interleaved order. */
  const interleaved = (steps: number) =>
    build((b) => {
      const blocks: Value[] = [];
      for (let t = 0; t < steps; t++) {
        for (const dir of ['f', 'b']) {
          const at = dir === 'f' ? t : steps - 1 - t;
          blocks.push(b.op('pad', [b.input(`d${dir}${at}`, 'f32[B, 1, 3]')], { before: [0, at, 0], after: [0, steps - 1 - at, 0] }));
        }
      }
      b.out('dx', blocks.reduce((acc, v) => b.op('add', [acc, v])));
    });

  it("a bidirectional scan's interleaved padded blocks become a concat of each reader's blocks, added once; the same bits", () => {
    const g = interleaved(4);
    const got = joinPaddedSums(g);
    expect(verifyGraph(got)).toEqual([]);
    const live = dce(got);
    expect(live.nodes.map((n) => n.op).sort()).toEqual(['add', 'concat', 'concat']);
    expectSameOutputs(g, got, SEED + 2);
  });

  it('blocks with gaps get zero fills and one pad; overlapping blocks stay as they are', () => {
    const gaps = build((b) => {
      const at = [1, 4, 5];
      const blocks = at.map((k) => b.op('pad', [b.input(`d${k}`, 'f32[2, 1, 3]')], { before: [0, k, 0], after: [0, 7 - k, 0] }));
      b.out('dx', blocks.reduce((acc, v) => b.op('add', [acc, v])));
    });
    const got = dce(joinPaddedSums(gaps));
    expect(got.nodes.map((n) => n.op)).toEqual(['full', 'concat', 'pad']);
    expectSameOutputs(gaps, got, SEED + 3);
    const overlap = build((b) => {
      const blocks = [0, 1, 1].map((k, i) => b.op('pad', [b.input(`d${i}`, 'f32[2, 2, 3]')], { before: [0, k, 0], after: [0, 2 - k, 0] }));
      b.out('dx', blocks.reduce((acc, v) => b.op('add', [acc, v])));
    });
    expect(joinPaddedSums(overlap)).toBe(overlap);
  });
});

describe('one-hot-compares', () => {
  it('one_hot becomes a comparison with an iota (clamped or not, any dtype); the same bits, indices out of range included', () => {
    const g = build((b) => {
      const labels = b.input('labels', 'i32[B]');
      b.out('clamped', b.op('one_hot', [labels], { depth: 4, dtype: 'f32', clamp: true }));
      b.out('plain', b.op('one_hot', [labels], { depth: 4, dtype: 'bool' }));
      b.out('unsigned', b.op('one_hot', [b.input('u', 'u32[B]')], { depth: 3, dtype: 'i32', clamp: true }));
    });
    const got = oneHotCompares(g);
    expect(verifyGraph(got)).toEqual([]);
    expect(got.nodes.some((n) => n.op === 'one_hot')).toBe(false);
    expect(got.nodes.filter((n) => n.op === 'iota')).toHaveLength(3);
    // cse shares the iota of one depth and type
    expect(optimize(got).nodes.filter((n) => n.op === 'iota')).toHaveLength(2);
    const sizes = new Map([['B', 6]]);
    const feeds = { inputs: new Map([['labels', tensor('i32', [6], [-2, 0, 1, 3, 4, 9])], ['u', tensor('u32', [6], [0, 1, 2, 3, 7, 1])]]), params: new Map(), state: new Map() };
    const want = interpretGraph(g, feeds, { sizes }).outputs;
    const have = interpretGraph(got, feeds, { sizes }).outputs;
    for (const [k, t] of want) {
      expect(have.get(k)!.dtype, k).toBe(t.dtype);
      expect([...have.get(k)!.data], k).toEqual([...t.data]);
    }
  });
});

describe('concat-reshapes', () => {
  it("a scan's yields (each step's [B, 3] reshaped to [B, 1, 3], concatenated along axis 1) become a reshape of the steps concatenated; the same bits", () => {
    const g = build((b) => {
      const hs = [0, 1, 2].map((t) => b.op('reshape', [b.op('tanh', [b.input(`h${t}`, 'f32[B, 3]')])], { shape: ty('f32[B, 1, 3]').shape }));
      b.out('ys', b.op('concat', hs, { axis: 1 }));
    });
    const got = dce(concatReshapes(g));
    expect(verifyGraph(got)).toEqual([]);
    expect(got.nodes.map((n) => n.op)).toEqual(['tanh', 'tanh', 'tanh', 'concat', 'reshape']);
    expect(got.nodes[3].outputs[0].type.shape.map(String)).toEqual([String(ty('f32[B]').shape[0]), '9']);
    expectSameOutputs(g, got, SEED + 8);
  });

  it('a unit axis after every axis of the operands (they would interleave), or an operand not so reshaped, stays', () => {
    const last = build((b) => {
      const cols = [0, 1].map((t) => b.op('reshape', [b.input(`c${t}`, 'f32[2, 3]')], { shape: [2, 3, 1] }));
      b.out('m', b.op('concat', cols, { axis: 2 }));
    });
    expect(concatReshapes(last)).toBe(last);
    const mixed = build((b) => {
      const r = b.op('reshape', [b.input('a', 'f32[2, 3]')], { shape: [2, 1, 3] });
      b.out('m', b.op('concat', [r, b.input('b', 'f32[2, 1, 3]')], { axis: 1 }));
    });
    expect(concatReshapes(mixed)).toBe(mixed);
  });
});

describe('hoist-reshapes', () => {
  it("a batch norm's folded scale (gamma * rsqrt(var + eps), reshaped to [1, C, 1, 1]) computes on the reshaped tensors, and fusion puts it in the kernel that reads it; the same bits", () => {
    const g = build((b) => {
      const x = b.input('x', 'f32[B, 4, 3, 3]');
      const scale = b.op('mul', [b.input('gamma', 'f32[4]'), b.op('rsqrt', [b.op('add', [b.input('var', 'f32[4]'), b.full(1e-5)])])]);
      b.out('y', b.op('mul', [x, b.op('reshape', [scale], { shape: [1, 4, 1, 1] })]));
    });
    const got = dce(hoistReshapes(g));
    expect(verifyGraph(got)).toEqual([]);
    expect(got.nodes.map((n) => n.op)).toEqual(['full', 'reshape', 'reshape', 'add', 'rsqrt', 'mul', 'mul']);
    expect(got.nodes.filter((n) => n.op === 'rsqrt')[0].outputs[0].type.shape).toEqual([1, 4, 1, 1]);
    expectSameOutputs(g, got, SEED + 11);
    // one kernel after fusion, instead of the scale's and the product's
    expect(kernelCount(fuseGraph(got).graph)).toBe(1);
    expect(kernelCount(fuseGraph(g).graph)).toBe(2);
  });

  it("stays where the chain reads a kernel's result (a training step's batch statistics), is read twice, or the reshape moves more than unit axes", () => {
    const computed = build((b) => {
      const v = b.op('reduce_sum', [b.input('x', 'f32[B, 4]')], { axes: [0] });
      b.out('y', b.op('reshape', [b.op('rsqrt', [v])], { shape: [1, 4] }));
    });
    expect(hoistReshapes(computed)).toBe(computed);
    const shared = build((b) => {
      const s = b.op('exp', [b.input('a', 'f32[4]')]);
      b.out('y', b.op('reshape', [s], { shape: [1, 4] }));
      b.out('s', s);
    });
    expect(hoistReshapes(shared)).toBe(shared);
    const merged = build((b) => b.out('y', b.op('reshape', [b.op('exp', [b.input('a', 'f32[2, 3]')])], { shape: [6] })));
    expect(hoistReshapes(merged)).toBe(merged);
  });
});

describe('stack-shared-matmuls', () => {
  /** A recurrence h_t = tanh(x_t w_x + h_{t-1} w_h) over `steps` slices of one sequence x. */
  const recurrence = (steps: number) =>
    build((b) => {
      const x = b.input('x', `f32[B, ${steps}, 3]`);
      const wx = b.input('wx', 'f32[3, 4]');
      const wh = b.input('wh', 'f32[4, 4]');
      let h = b.input('h0', 'f32[B, 4]');
      for (let t = 0; t < steps; t++) {
        const xt = b.op('reshape', [b.op('slice', [x], { starts: [0, t, 0], stops: [null, t + 1, null] })], { shape: ty('f32[B, 3]').shape });
        h = b.op('tanh', [b.op('add', [b.op('matmul', [xt, wx]), b.op('matmul', [h, wh])])]);
        b.out(`h${t}`, h);
      }
    });

  it("a recurrence's input projections x_t w_x over 5 steps become one matmul over the stacked steps; h_t w_h, which waits for the previous step, stays; the same bits", () => {
    const g = recurrence(5);
    const got = stackSharedMatmuls(g);
    expect(verifyGraph(got)).toEqual([]);
    const matmuls = got.nodes.filter((n) => n.op === 'matmul');
    const stacked = matmuls.filter((n) => n.inputs[1].id === g.inputs[1].value.id);
    expect(stacked.map((n) => n.inputs[0].type.shape.map(String))).toEqual([[String(ty('f32[5 * B]').shape[0]), '3']]);
    expect(matmuls.filter((n) => n.inputs[1].id === g.inputs[2].value.id)).toHaveLength(5);
    // each step reads its rows of the product
    expect(got.nodes.filter((n) => n.op === 'slice' && n.inputs[0].id === stacked[0].outputs[0].id)).toHaveLength(5);
    expectSameOutputs(g, got, SEED + 7);
    // in the whole pipeline too, once
    expect(optimize(g).nodes.filter((n) => n.op === 'matmul')).toHaveLength(6);
  });

  it('fewer than 4 matmuls, or left operands that wait for one of the results, stay as they are', () => {
    const three = recurrence(3);
    expect(stackSharedMatmuls(three)).toBe(three);
    // a_{t+1} = tanh(a_t w): every left operand but the first depends on an earlier result
    const chain = build((b) => {
      const w = b.input('w', 'f32[4, 4]');
      let a = b.input('a0', 'f32[2, 4]');
      for (let t = 0; t < 6; t++) a = b.op('tanh', [b.op('matmul', [a, w])]);
      b.out('a', a);
    });
    expect(stackSharedMatmuls(chain)).toBe(chain);
  });
});

describe('optimize', () => {
  it('reaches a fixed point: simplify exposes folds, folds expose cse, dce cleans up', () => {
    const before = build((b) => {
      const x = b.input('x', 'f32[B, 3]');
      const k1 = b.op('mul', [b.full(2), b.full(3)]); // 6
      const k2 = b.op('add', [b.full(6), b.full(0)]); // 6 + 0 -> 6, then merged with k1
      const a = b.op('mul', [x, k1]);
      const c = b.op('mul', [x, k2]);
      b.out('y', b.op('add', [a, b.op('neg', [b.op('neg', [c])])]));
    });
    const after = build((b) => {
      const x = b.input('x', 'f32[B, 3]');
      const six = b.full(6);
      const a = b.op('mul', [x, six]);
      b.out('y', b.op('add', [a, a]));
    });
    const got = optimize(before);
    expect(verifyGraph(got)).toEqual([]);
    expect(canon(got)).toEqual(canon(after));
    expect(optimize(got)).toBe(got);
  });
});

// ---- equivalence on the examples --------------------------------------------------------------------

interface Case extends ExampleCase {
  /** Source text instead of examples/<file>.dl: the hand-written models. */
  readonly text?: string;
}

const SMALL_MODELS = `
use std.nn.{Dense, LayerNorm}
use std.act.{relu, gelu}
use std.loss.{mse}

model Redundant(d: int = 4) {
  input x: f32[B, d]
  input y: f32[B, d]
  layer a = Dense(d, d)
  layer n = LayerNorm(d)
  let h = relu(a(x)) * 1.0 + 0.0
  let g = relu(a(x))
  let t = transpose(transpose(h, [1, 0]), [1, 0])
  let z = n(gelu(t + g)) * (2.0 * 3.0) / 1.0
  output z = -(-z)
  loss = mse(z, y) + mse(g, y) * exp(0.0)
}
`;

const CASES: Case[] = [...EXAMPLE_CASES, { file: 'small', model: 'Redundant', args: 'd: 4', sizes: { B: 3 }, text: SMALL_MODELS }];

/** The graph with the gradient of every loss with respect to every float parameter exposed as outputs. */
function gradients(g: Graph): Graph {
  const editor = new GraphEditor(g);
  const wrt = g.params.filter((p) => p.value.type.dtype === 'f32').map((p) => p.value);
  for (const [name, loss] of g.losses) {
    const grads = addGradients(editor, loss, wrt);
    g.params.forEach((p) => {
      const d = grads.get(p.value.id);
      if (d) editor.outputs.set(`d${name}/d${p.path}`, d);
    });
  }
  return editor.finish();
}

function closeEnough(a: Tensor, b: Tensor): boolean {
  if (a.dtype !== b.dtype || a.shape.join() !== b.shape.join()) return false;
  return a.data.every((x, i) => {
    const y = b.data[i];
    if (Number.isNaN(x) || Number.isNaN(y)) return Number.isNaN(x) && Number.isNaN(y);
    return Math.abs(x - y) <= 1e-12 * Math.max(Math.abs(x), Math.abs(y));
  });
}

/** Every pass alone and the pipeline keep the graph well formed; the verifier names the pass that broke it. */
function checkPasses(g: Graph): Graph {
  for (const p of [...PASSES, ...LATE_PASSES]) expect(verifyGraph(p.run(g)), `after ${p.name}`).toEqual([]);
  const opt = optimize(g);
  expect(verifyGraph(opt), 'after optimize').toEqual([]);
  expect(opt.nodes.length).toBeLessThanOrEqual(g.nodes.length);
  return opt;
}

const reductions: string[] = [];

describe(`optimized examples compute the same results (seed ${SEED})`, () => {
  const stdlib = stdlibModules().programs;
  for (const c of CASES) {
    for (const training of [true, false]) {
      it(`${c.file}: ${c.model} (${training ? 'train, with gradients' : 'eval'})`, () => {
        const text = c.text ?? readFileSync(`examples/${c.file}.dl`, 'utf8');
        const program = parse(text, `${c.file}.dl`).program;
        const result = elaborate(program, { modules: stdlib, training, modelArgs: new Map([[c.model, argsOf(c.model, c.args)]]) });
        expect(result.diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual([]);
        const forward = result.graphs.get(c.model)!;
        const g = training ? gradients(forward) : forward;
        expect(verifyGraph(g)).toEqual([]);
        const opt = checkPasses(g);
        reductions.push(`${c.model} ${training ? 'train+grad' : 'eval'}: ${g.nodes.length} -> ${opt.nodes.length}`);
        const sizes = new Map(Object.entries(c.sizes));
        const feeds = randomFeeds(g, sizes, seededRandom(SEED), { intRange: c.intRange ?? {} });
        const want = interpretGraph(g, feeds, { sizes });
        const got = interpretGraph(opt, feeds, { sizes });
        for (const kind of ['outputs', 'losses', 'metrics', 'state'] as const) {
          expect([...got[kind].keys()]).toEqual([...want[kind].keys()]);
          for (const [name, t] of want[kind]) expect(closeEnough(got[kind].get(name)!, t), `${kind} ${name}`).toBe(true);
        }
      });
    }
  }

  it('at the examples’ own sizes, every model verifies after each pass and does not grow', () => {
    for (const file of ['mnist_mlp', 'lenet', 'resnet', 'lstm_classifier', 'char_transformer', 'gan', 'autoencoder', 'reinforce_cartpole', 'a2c_pendulum']) {
      const checked = checkSource(readFileSync(`examples/${file}.dl`, 'utf8'), `examples/${file}.dl`);
      expect(checked.diagnostics).toEqual([]);
      for (const [name, g] of checked.graphs) {
        const opt = checkPasses(g);
        reductions.push(`${name} (defaults, forward): ${g.nodes.length} -> ${opt.nodes.length}`);
      }
    }
    if (process.env.DLC_OPTIMIZE_REPORT) console.log(reductions.join('\n'));
  });
});
