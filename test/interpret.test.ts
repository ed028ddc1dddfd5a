// The reference interpreter over whole graphs: size binding from feeds, node evaluation, and its checks on declared types.
import { describe, expect, it } from 'vitest';
import type { Attrs, Graph, Node, TensorType, Value } from '../compiler/ir/types.ts';
import { sym } from '../compiler/shapes/dim.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import { ty } from '../compiler/ops/testing.ts';

const span = { file: 'test.dl', start: 0, end: 0 };

/** A tiny graph builder: values get consecutive ids, nodes are appended in order. */
function builder() {
  let next = 0;
  const nodes: Node[] = [];
  const value = (type: TensorType | string, name?: string): Value => ({ id: next++, type: typeof type === 'string' ? ty(type) : type, ...(name ? { name } : {}) });
  const node = (op: string, inputs: Value[], attrs: Attrs, out: TensorType | string): Value => {
    const v = value(out);
    nodes.push({ op, inputs, attrs, outputs: [v], span });
    return v;
  };
  return { value, node, nodes };
}

/**
 * A two-layer model: logits = relu(x @ w1 + b1) @ w2, loss = mean over the batch of
 * -logits[label] (a toy loss), accuracy = mean(argmax(logits) == label).
 */
function mlp(outType = 'f32[B, 2]') {
  const g = builder();
  const x = g.value('f32[B, 3]', 'x');
  const label = g.value('i32[B]', 'label');
  const w1 = g.value('f32[3, 4]', 'w1');
  const b1 = g.value('f32[4]', 'b1');
  const w2 = g.value('f32[4, 2]', 'w2');
  const count = g.value('f32[]', 'count');
  const h = g.node('matmul', [x, w1], {}, 'f32[B, 4]');
  const hb = g.node('add', [h, b1], {}, 'f32[B, 4]');
  const zero = g.node('full', [], { shape: [], value: 0 }, 'f32[]');
  const r = g.node('maximum', [hb, zero], {}, 'f32[B, 4]');
  const logits = g.node('matmul', [r, w2], {}, outType);
  const lab2 = g.node('reshape', [label], { shape: [sym('B'), 1] }, 'i32[B, 1]');
  const picked = g.node('take_along_axis', [logits, lab2], { axis: 1 }, 'f32[B, 1]');
  const total = g.node('reduce_sum', [picked], { axes: [0, 1] }, 'f32[]');
  const b = g.node('full', [], { shape: [], value: 0 }, 'f32[]');
  const n = g.node('add', [b, count], {}, 'f32[]');
  const neg = g.node('neg', [total], {}, 'f32[]');
  const loss = g.node('div', [neg, n], {}, 'f32[]');
  const pred = g.node('argmax', [logits], { axis: 1 }, 'i32[B]');
  const hit = g.node('eq', [pred, label], {}, 'bool[B]');
  const hitf = g.node('cast', [hit], { dtype: 'f32' }, 'f32[B]');
  const hits = g.node('reduce_sum', [hitf], { axes: [0] }, 'f32[]');
  const acc = g.node('div', [hits, n], {}, 'f32[]');
  const graph: Graph = {
    name: 'Mlp',
    inputs: [
      { name: 'x', value: x, span },
      { name: 'label', value: label, span },
    ],
    params: [
      { path: 'w1', value: w1, init: { kind: 'zeros', options: {} }, span },
      { path: 'b1', value: b1, init: { kind: 'zeros', options: {} }, span },
      { path: 'w2', value: w2, init: { kind: 'zeros', options: {} }, span },
    ],
    state: [{ path: 'count', value: count, init: { kind: 'zeros', options: {} }, span, update: n }],
    nodes: g.nodes,
    outputs: new Map([['logits', logits]]),
    losses: new Map([['loss', loss]]),
    metrics: new Map([['accuracy', acc]]),
    layerCalls: [],
    constraints: [],
  };
  return graph;
}

const f = (shape: number[], v: number[]) => tensor('f32', shape, v);
const params = new Map<string, Tensor>([
  ['w1', f([3, 4], [1, 0, 0, -1, 0, 1, 0, -1, 0, 0, 1, -1])],
  ['b1', f([4], [0, 0, 0, 0.5])],
  ['w2', f([4, 2], [1, 0, 0, 1, 1, 1, 2, -2])],
]);
const state = new Map<string, Tensor>([['count', f([], [2])]]);

describe('interpretGraph', () => {
  it('binds B from the input and evaluates outputs, losses, metrics and state updates by hand', () => {
    const inputs = new Map<string, Tensor>([
      ['x', f([2, 3], [1, 2, 3, -1, -2, 0.5])],
      ['label', tensor('i32', [2], [1, 0])],
    ]);
    const r = interpretGraph(mlp(), { inputs, params, state });
    expect(r.sizes.get('B')).toBe(2);
    // Row 1: h = [1, 2, 3, -5.5] -> relu [1, 2, 3, 0] -> logits [1 + 3, 2 + 3] = [4, 5].
    // Row 2: h = [-1, -2, 0.5, 3] -> relu [0, 0, 0.5, 3] -> logits [0.5 + 6, 0.5 - 6] = [6.5, -5.5].
    expect([...r.outputs.get('logits')!.data]).toEqual([4, 5, 6.5, -5.5]);
    // picked = [5, 6.5]; count + 0 = 2; loss = -(11.5) / 2.
    expect(r.losses.get('loss')!.data[0]).toBe(-5.75);
    expect(r.metrics.get('accuracy')!.data[0]).toBe(1);
    expect(r.state.get('count')!.data[0]).toBe(2);
    expect(r.values.size).toBe(6 + 17);
  });

  it('takes B from a different batch size on the next call', () => {
    const inputs = new Map<string, Tensor>([
      ['x', f([1, 3], [0, 0, 0])],
      ['label', tensor('i32', [1], [1])],
    ]);
    const r = interpretGraph(mlp(), { inputs, params, state });
    expect(r.outputs.get('logits')!.shape).toEqual([1, 2]);
    expect([...r.outputs.get('logits')!.data]).toEqual([1, -1]);
  });

  it('throws when a node result disagrees with its declared type', () => {
    const inputs = new Map<string, Tensor>([
      ['x', f([2, 3], [1, 2, 3, 4, 5, 6])],
      ['label', tensor('i32', [2], [0, 0])],
    ]);
    expect(() => interpretGraph(mlp('f32[B, 3]'), { inputs, params, state })).toThrow(
      'node 4 (matmul) output %10: produced f32[2, 2] but its type [B, 3] is [2, 3] under B=2',
    );
  });

  it('throws on missing feeds, wrong dtypes and inconsistent sizes', () => {
    const x = f([2, 3], [1, 2, 3, 4, 5, 6]);
    expect(() => interpretGraph(mlp(), { inputs: new Map([['x', x]]), params, state })).toThrow('missing input label: it is declared i32[B]');
    expect(() =>
      interpretGraph(mlp(), { inputs: new Map([['x', x], ['label', tensor('i32', [3], [0, 0, 0])]]), params, state }),
    ).toThrow('input label: size B is 3 here but 2 elsewhere');
    expect(() =>
      interpretGraph(mlp(), { inputs: new Map([['x', x], ['label', tensor('f32', [2], [0, 0])]]), params, state }),
    ).toThrow('input label: fed f32[2] but it is declared i32[B]');
    expect(() =>
      interpretGraph(mlp(), { inputs: new Map([['x', f([2, 4], [1, 2, 3, 4, 5, 6, 7, 8])], ['label', tensor('i32', [2], [0, 0])]]), params, state }),
    ).toThrow('input x: fed f32[2, 4] but its type [B, 3] is [2, 3] under B=2');
  });

  it('accepts sizes given up front and checks feeds against them', () => {
    const inputs = new Map<string, Tensor>([
      ['x', f([2, 3], [1, 2, 3, 4, 5, 6])],
      ['label', tensor('i32', [2], [0, 0])],
    ]);
    expect(() => interpretGraph(mlp(), { inputs, params, state }, { sizes: new Map([['B', 5]]) })).toThrow('size B is 2 here but 5 elsewhere');
  });
});
