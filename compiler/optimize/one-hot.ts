// One-hot rows as comparisons: one_hot(i, depth) = (i[.., 1] == iota(depth)), elementwise work that fusion puts in the kernels reading the rows.
//
// A classifier's step builds one-hot rows of its labels (the cross-entropy's select, gathers.ts) and of
// its predictions (precision and recall), each a kernel of its own that writes B x depth values. As a
// comparison of the indices, one per row, with an iota over the depth, the rows are elementwise: elementwise
// fusion (fuse.ts) computes them inside the kernels that read them, and the iota depends on nothing but
// the sizes, so it runs once (codegen/once.ts), not every step. `clamp` clamps the index into
// [0, depth - 1] first; a cast gives the dtype. The values are the same: 1 where the index equals the
// position, 0 elsewhere (an index out of range, unclamped, matches no position). Pure.
import '../ops/index.ts';
import { inferOp, isShapeError } from '../ops/registry.ts';
import type { Attrs, DType, Graph, Node, TensorType, Value } from '../ir/types.ts';
import { firstFreeId } from '../ir/editor.ts';
import { type Dim, sub } from '../shapes/dim.ts';
import { Substitution, withNodes } from './rewrite.ts';

export function oneHotCompares(g: Graph): Graph {
  if (!g.nodes.some((n) => n.op === 'one_hot')) return g;
  let nextId = firstFreeId(g);
  const nodes: Node[] = [];
  let changed = false;
  for (const n of g.nodes) {
    const [idx] = n.inputs;
    if (n.op !== 'one_hot' || n.inputs.length !== 1 || n.outputs.length !== 1 || (idx.type.dtype !== 'i32' && idx.type.dtype !== 'u32')) {
      nodes.push(n);
      continue;
    }
    const mark = nodes.length;
    const make = (op: string, inputs: readonly Value[], attrs: Attrs, out?: Value): Value | undefined => {
      const t = inferOp(op, inputs.map((v) => v.type), attrs);
      if (isShapeError(t) || t.length !== 1) return undefined;
      const v: Value = out ?? { id: nextId++, type: t[0] as TensorType };
      nodes.push({ op, inputs, attrs, outputs: [v], span: n.span });
      return v;
    };
    const depth = n.attrs.depth as Dim;
    const dtype = (n.attrs.dtype ?? 'f32') as DType;
    const scalar = (value: number | Dim) => make('full', [], { shape: [], value, dtype: idx.type.dtype });
    let at = make('reshape', [idx], { shape: [...idx.type.shape, 1] });
    if (n.attrs.clamp === true) {
      const lo = idx.type.dtype === 'i32' ? scalar(0) : undefined;
      const hi = scalar(sub(depth, 1));
      if (at && lo) at = make('maximum', [at, lo], {});
      at = at && hi && make('minimum', [at, hi], {});
    }
    const positions = make('iota', [], { shape: [depth], axis: 0, dtype: idx.type.dtype });
    const hot = at && positions && make('eq', [at, positions], {}, dtype === 'bool' ? n.outputs[0] : undefined);
    const result = dtype === 'bool' ? hot : hot && make('cast', [hot], { dtype }, n.outputs[0]);
    if (!result) {
      nodes.length = mark;
      nodes.push(n);
      continue;
    }
    changed = true;
  }
  return changed ? withNodes(g, nodes, new Substitution()) : g;
}
