// Kernels for the gather and scatter primitives: take, take_along_axis, scatter_add (as a gather, no atomics), its sorted form, and one_hot.
//
// Indices are clamped to [0, n - 1] exactly as the interpreter clamps them (ops/gather.ts): a negative
// i32 index reads row 0, a large one the last row. scatter_add is written as a gather: each output
// element walks every index in order and adds the updates whose clamped index is its row, so the sums
// are deterministic and need no atomics, but it costs one pass over the k indices per output element
// (rows x k x inner: an embedding's gradient with a real vocabulary). The optimizer therefore rewrites
// it (optimize/scatters.ts) into index_order, a stable counting of each index's place among the sorted
// indices (k x k comparisons of integers), and sorted_scatter_add, where each output element finds its
// row's run of the sorted indices by binary search and adds just those updates, in the same order as
// the gather: the same f32 sums, bit for bit, in k x inner + rows x inner x log k.
import type { DType, Node } from '../ir/types.ts';
import type { Dim } from '../shapes/dim.ts';
import type { KernelPlan } from './kernel.ts';
import { kernelStorageType } from './matmul.ts';
import { numelOf, perElementPlan } from './per-element.ts';

/** The clamped row of index `e` (i32 or u32) for an axis of `n` rows, as a u32. */
function clampRow(idxType: DType, e: string, n: string): string {
  return idxType === 'i32' ? `u32(clamp(${e}, 0i, i32(${n}) - 1i))` : `min(${e}, ${n} - 1u)`;
}

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** out[prefix, j..., suffix] = table[prefix, clamp(idx[j...]), suffix]. */
export function takePlans(node: Node): KernelPlan[] {
  const [table, ind] = node.inputs.map((v) => v.type);
  const out = node.outputs[0].type;
  const axis = normAxis(node.attrs.axis as number, table.shape.length);
  const words: [string, Dim][] = [
    ['inner', numelOf(table.shape.slice(axis + 1))],
    ['k', numelOf(ind.shape)],
    ['n', table.shape[axis]],
  ];
  return [
    perElementPlan({
      op: node.op,
      what: `take ${table.dtype} rows on axis ${axis} with ${ind.dtype} indices`,
      shape: out.shape,
      index: false,
      inputs: [
        { name: 'table', dtype: table.dtype, node: 0 },
        { name: 'ind', dtype: ind.dtype, node: 1 },
      ],
      outDtype: out.dtype,
      words,
      body: ['let s = idx % inner;', 'let t = idx / inner;', `let row = ${clampRow(ind.dtype, 'ind[t % k]', 'n')};`],
      result: 'table[((t / k) * n + row) * inner + s]',
    }),
  ];
}

/** The position of index j in the stable sort of the clamped indices: every j goes to its own slot, out[pos(j)] = j. */
export function indexOrderPlans(node: Node): KernelPlan[] {
  const ind = node.inputs[0].type;
  const words: [string, Dim][] = [
    ['k', numelOf(ind.shape)],
    ['n', node.attrs.size as Dim],
  ];
  return [
    perElementPlan({
      op: node.op,
      what: `the stable order of ${ind.dtype} indices clamped to [0, n), counted against every other index`,
      shape: node.outputs[0].type.shape,
      index: false,
      inputs: [{ name: 'ind', dtype: ind.dtype, node: 0 }],
      outDtype: 'i32',
      words,
      body: [
        `let key = ${clampRow(ind.dtype, 'ind[idx]', 'n')};`,
        // the indices before this one that sort before it or tie with it, and those after that sort before it
        'var pos = 0u;',
        'for (var j = 0u; j < k; j++) {',
        `  let other = ${clampRow(ind.dtype, 'ind[j]', 'n')};`,
        '  pos += select(0u, 1u, other < key || (other == key && j < idx));',
        '}',
      ],
      result: 'i32(idx)',
      store: 'pos',
    }),
  ];
}

/** What both scatter kernels share: the updates, indices and output types, the axis, the sum's zero, the size words and the body's first lines. */
function scatterLayout(node: Node) {
  const [upd, ind] = node.inputs.map((v) => v.type);
  const out = node.outputs[0].type;
  const axis = node.attrs.axis as number;
  const r = ind.shape.length;
  const ty = kernelStorageType(out.dtype);
  const zero = ty === 'f32' ? '0.0' : ty === 'i32' ? '0i' : '0u';
  const words: [string, Dim][] = [
    ['inner', numelOf(upd.shape.slice(axis + r))],
    ['k', numelOf(ind.shape)],
    ['n', out.shape[axis]],
  ];
  // an output element's column s, row, and the flat offset of its prefix's updates
  const locate = ['let s = idx % inner;', 'let t = idx / inner;', 'let row = t % n;', 'let base = (t / n) * k;'];
  return { upd, ind, out, axis, zero, words, locate };
}

/**
 * scatter_add given the indices' stable order (index_order): out[prefix, r, suffix] adds upd[prefix,
 * order[i], suffix] over the run of i whose sorted index is r, found by two binary searches. With the
 * order index_order gives, the run holds exactly the j with clamp(idx[j]) == r, ascending, so the sum is
 * scatter_add's own. Any other order reads in bounds (its entries are clamped to [0, k)) and gives what
 * the interpreter's same searches give.
 */
export function sortedScatterAddPlans(node: Node): KernelPlan[] {
  const { upd, ind, out, axis, zero, words, locate } = scatterLayout(node);
  const at = (i: string) => `u32(clamp(order[${i}], 0i, i32(k) - 1i))`;
  const keyAt = (i: string) => clampRow(ind.dtype, `ind[${at(i)}]`, 'n');
  return [
    perElementPlan({
      op: node.op,
      what: `scatter_add ${upd.dtype} on axis ${axis} with ${ind.dtype} indices in their sorted order: a binary search for the row's run`,
      shape: out.shape,
      index: false,
      inputs: [
        { name: 'upd', dtype: upd.dtype, node: 0 },
        { name: 'ind', dtype: ind.dtype, node: 1 },
        { name: 'order', dtype: 'i32', node: 2 },
      ],
      outDtype: out.dtype,
      words,
      body: [
        ...locate,
        // the first sorted position whose index is not below the row, then the first past the row's run
        'let start = lower_bound(0u, row, k, n);',
        'let end = lower_bound(start, row + 1u, k, n);',
        `var acc = ${zero};`,
        'for (var i = start; i < end; i++) {',
        `  acc += upd[(base + ${at('i')}) * inner + s];`,
        '}',
      ],
      result: 'acc',
      helpers: [
        [
          '// The first sorted position from `first` on whose clamped index is not below `bound`.',
          'fn lower_bound(first: u32, bound: u32, k: u32, n: u32) -> u32 {',
          '  var lo = first;',
          '  var hi = k;',
          '  while (lo < hi) {',
          '    let mid = (lo + hi) / 2u;',
          `    if (${keyAt('mid')} < bound) { lo = mid + 1u; } else { hi = mid; }`,
          '  }',
          '  return lo;',
          '}',
        ].join('\n'),
      ],
    }),
  ];
}

/** out[prefix, r, suffix] = sum over j (in order) with clamp(idx[j]) == r of upd[prefix, j, suffix]. */
export function scatterAddPlans(node: Node): KernelPlan[] {
  const { upd, ind, out, axis, zero, words, locate } = scatterLayout(node);
  return [
    perElementPlan({
      op: node.op,
      what: `scatter_add ${upd.dtype} on axis ${axis} with ${ind.dtype} indices, as a gather over the indices`,
      shape: out.shape,
      index: false,
      inputs: [
        { name: 'upd', dtype: upd.dtype, node: 0 },
        { name: 'ind', dtype: ind.dtype, node: 1 },
      ],
      outDtype: out.dtype,
      words,
      body: [
        ...locate,
        `var acc = ${zero};`,
        'for (var j = 0u; j < k; j++) {',
        `  if (${clampRow(ind.dtype, 'ind[j]', 'n')} == row) { acc += upd[(base + j) * inner + s]; }`,
        '}',
      ],
      result: 'acc',
    }),
  ];
}

/** out[p] = arr[prefix, clamp(idx[p]), suffix] where p = (prefix, j, suffix) over the indices' shape. */
export function takeAlongAxisPlans(node: Node): KernelPlan[] {
  const [arr, ind] = node.inputs.map((v) => v.type);
  const out = node.outputs[0].type;
  const axis = normAxis(node.attrs.axis as number, arr.shape.length);
  const words: [string, Dim][] = [
    ['inner', numelOf(arr.shape.slice(axis + 1))],
    ['k', ind.shape[axis]],
    ['n', arr.shape[axis]],
  ];
  return [
    perElementPlan({
      op: node.op,
      what: `take_along_axis ${arr.dtype} on axis ${axis} with ${ind.dtype} indices`,
      shape: out.shape,
      index: false,
      inputs: [
        { name: 'arr', dtype: arr.dtype, node: 0 },
        { name: 'ind', dtype: ind.dtype, node: 1 },
      ],
      outDtype: out.dtype,
      words,
      body: ['let s = idx % inner;', `let row = ${clampRow(ind.dtype, 'ind[idx]', 'n')};`],
      result: 'arr[((idx / inner / k) * n + row) * inner + s]',
    }),
  ];
}

/** out[j, d] = 1 where idx[j] == d, else 0 (an index outside [0, depth) gives a zero row). */
export function oneHotPlans(node: Node): KernelPlan[] {
  const ind = node.inputs[0].type;
  const out = node.outputs[0].type;
  const depth = out.shape[out.shape.length - 1];
  const ty = kernelStorageType(out.dtype);
  const [zero, one] = ty === 'f32' ? ['0.0', '1.0'] : ty === 'i32' ? ['0i', '1i'] : ['0u', '1u'];
  const clamp = node.attrs.clamp === true;
  const hot = ind.dtype === 'i32' && !clamp ? 'v >= 0i && u32(v) == d' : 'u32(v) == d';
  // clamped: the nearest index in [0, depth)
  const read = !clamp ? 'ind[idx / depth]' : ind.dtype === 'i32' ? 'clamp(ind[idx / depth], 0i, i32(depth) - 1i)' : 'min(ind[idx / depth], depth - 1u)';
  return [
    perElementPlan({
      op: node.op,
      what: `one_hot of ${ind.dtype} indices to ${out.dtype}${clamp ? ', clamped' : ''}`,
      shape: out.shape,
      index: false,
      inputs: [{ name: 'ind', dtype: ind.dtype, node: 0 }],
      outDtype: out.dtype,
      words: [['depth', depth]],
      body: ['let d = idx % depth;', `let v = ${read};`],
      result: `select(${zero}, ${one}, ${hot})`,
    }),
  ];
}
