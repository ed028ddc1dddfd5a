// fused_reduce: reductions over the same rows together with their elementwise producers and consumers (softmax, layer norm, a loss), one kernel.
//
// A row domain is a full shape F and the reduced axes A: a row is the set of F's elements that share
// an index on the kept axes. The node's body is a list of units, each one node of the unfused graph:
//   - a reduction (reduce_sum or reduce_max, f32) of an F-shaped register over exactly A, keepdims or
//     not: one value per row;
//   - an elementwise primitive or a fused_elementwise (compiler/ops/fused.ts): computed per element
//     of the row when an operand varies along the row, else once per row (a fused_elementwise that
//     draws random numbers draws each at its element's flat index in its own shape: F's, or the row's);
//   - an alias: reshape between the two row shapes, broadcast_to from the kept-dims row shape to F, or
//     a reduction over size-1 axes of a row value, which move no data inside a row kernel;
//   - full: a scalar constant (a uniform word in the kernel).
// Every register (the node's inputs, then each unit's results in order) has one of four shape
// classes: full (F), keep (F with A set to 1), drop (F without A), or scalar (every size 1). A unit's
// results are full, keep or drop (a constant: anything that broadcasts). An operand's class must suit
// its unit, so that the unit's broadcasting reads the row's value: any class into a full unit but
// drop; keep or scalar into a keep unit; drop or scalar into a drop unit. The node's inputs are exempt
// (the kernel reads them through strides over the unit's shape).
//
// Attributes: `ops` and `outputs` in fused_elementwise's encoding (the units, the returned registers)
// and `axes`, the sorted A; optionally `views`, inputs read through strided views (ops/fused.ts: the
// register has the view's shape), and `out_views`, whole-row outputs stored into a slab of an in-place
// concat's buffer (ops/fused.ts). The fusion pass (compiler/optimize/fuse-rows.ts) builds these after
// elementwise fusion; the lowering is compiler/codegen/fused-reduce.ts.
import type { Attrs, AttrValue, Node, TensorType } from '../ir/types.ts';
import type { Tensor } from '../interpret/tensor.ts';
import { type Dim, isConcrete } from '../shapes/dim.ts';
import { fusedReducePlans } from '../codegen/fused-reduce.ts';
import { decodeFusedBody, FUSED_OP, isInlinableConstant, type FusedSubOp, isFusableSubOp, viewedInputs, viewedInputTypes, withOutputViews } from './fused.ts';
import { getOp, inferOp, isShapeError, registerOp, type ShapeError } from './registry.ts';
import { reduceAxes } from './reduce.ts';
import { err, sameShape, typeStr } from './util.ts';

export const FUSED_REDUCE_OP = 'fused_reduce';

export type RowClass = 'full' | 'keep' | 'drop' | 'scalar';
export type UnitKind = 'reduce' | 'compute' | 'alias' | 'const';

export interface RowUnit extends FusedSubOp {
  readonly kind: UnitKind;
  /** The unit's first register; its results are `first .. first + count - 1`. */
  readonly first: number;
  readonly count: number;
  /** The class of the unit's results (every result of a unit has the same shape). */
  readonly cls: RowClass;
}

export interface RowLayout {
  readonly full: readonly Dim[];
  readonly axes: readonly number[];
  readonly keep: readonly Dim[];
  readonly drop: readonly Dim[];
  /** Every register's type: the inputs, then the units' results. */
  readonly regs: readonly TensorType[];
  readonly units: readonly RowUnit[];
  readonly outputs: readonly number[];
}

const isOne = (d: Dim) => isConcrete(d) && d === 1;

/** The row domain of a reduction of `input` over `axes`: F, the kept-dims shape and the dropped one. */
export function rowDomain(full: readonly Dim[], axes: readonly number[]): { keep: Dim[]; drop: Dim[] } {
  return { keep: full.map((d, a) => (axes.includes(a) ? 1 : d)), drop: full.filter((_, a) => !axes.includes(a)) };
}

function classOf(shape: readonly Dim[], full: readonly Dim[], keep: readonly Dim[], drop: readonly Dim[]): RowClass | undefined {
  if (sameShape(shape, full)) return 'full';
  if (sameShape(shape, keep)) return 'keep';
  if (sameShape(shape, drop)) return 'drop';
  if (shape.every(isOne)) return 'scalar';
  return undefined;
}

/** Whether a register of class `operand` may feed a unit whose results have class `unit`. */
function suits(operand: RowClass, unit: RowClass): boolean {
  if (operand === 'scalar') return true;
  if (unit === 'full') return operand !== 'drop';
  return operand === unit;
}

/** The body decoded and checked against the row domain, or why it is not a row kernel. */
export function rowLayout(inputs: readonly TensorType[], attrs: Attrs): RowLayout | ShapeError {
  const body = decodeFusedBody(attrs);
  if (typeof body === 'string') return err(body.replace(FUSED_OP, FUSED_REDUCE_OP));
  // every register's type, unit by unit
  const regs: TensorType[] = [...inputs];
  const results: TensorType[][] = [];
  for (const [j, s] of body.ops.entries()) {
    const bad = s.args.find((r) => !Number.isInteger(r) || r < 0 || r >= regs.length);
    if (bad !== undefined) return err(`${FUSED_REDUCE_OP} unit ${j} (${s.op}) refers to register ${bad}, which is not defined before it`);
    if (!getOp(s.op)) return err(`${FUSED_REDUCE_OP} unit ${j} is ${s.op}, which is not an op`);
    const out = inferOp(s.op, s.args.map((r) => regs[r]), s.attrs);
    if (isShapeError(out)) return err(`${FUSED_REDUCE_OP} unit ${j}: ${out.message}`);
    results.push(out);
    regs.push(...out);
  }
  // the domain: the first reduction over axes that are not all of size 1
  let full: readonly Dim[] | undefined;
  let axes: readonly number[] | undefined;
  for (const s of body.ops) {
    if (s.op !== 'reduce_sum' && s.op !== 'reduce_max') continue;
    const x = regs[s.args[0]];
    const ax = reduceAxes(s.op, x, s.attrs);
    if (Array.isArray(ax) && !ax.every((a) => isOne(x.shape[a]))) {
      full = x.shape;
      axes = ax;
      break;
    }
  }
  if (!full || !axes) return err(`${FUSED_REDUCE_OP} needs a reduction over axes that are not all of size 1`);
  const { keep, drop } = rowDomain(full, axes);
  const cls: (RowClass | undefined)[] = inputs.map((t) => classOf(t.shape, full!, keep, drop));
  const units: RowUnit[] = [];
  let first = inputs.length;
  for (const [j, s] of body.ops.entries()) {
    const out = results[j];
    const argTypes = s.args.map((r) => regs[r]);
    let kind: UnitKind;
    if (s.op === 'reduce_sum' || s.op === 'reduce_max') {
      const x = argTypes[0];
      // the unit's own inference accepted the axes
      const ax = reduceAxes(s.op, x, s.attrs) as number[];
      const inCls = cls[s.args[0]];
      if (x.dtype === 'f32' && inCls === 'full' && ax.length === axes.length && ax.every((a, i) => a === axes![i])) kind = 'reduce';
      else if ((inCls === 'keep' || inCls === 'drop') && s.args[0] >= inputs.length && ax.every((a) => isOne(x.shape[a]))) kind = 'alias';
      else return err(`${FUSED_REDUCE_OP} unit ${j} (${s.op} of ${typeStr(x)}) is not a reduction over the rows`);
    } else if (s.op === 'reshape' || s.op === 'broadcast_to') {
      kind = 'alias';
    } else if (s.op === 'full') {
      if (!isInlinableConstant(s.attrs) || s.args.length !== 0) return err(`${FUSED_REDUCE_OP} unit ${j} is a full that is not a scalar constant`);
      kind = 'const';
    } else if (s.op === FUSED_OP || isFusableSubOp(s.op)) {
      kind = 'compute';
    } else {
      return err(`${FUSED_REDUCE_OP} unit ${j} is ${s.op}, which a row kernel cannot compute`);
    }
    const shape = out[0].shape;
    if (out.some((t) => !sameShape(t.shape, shape))) return err(`${FUSED_REDUCE_OP} unit ${j} (${s.op}) has results of different shapes`);
    const c = classOf(shape, full, keep, drop);
    if (c === undefined || (c === 'scalar' && kind !== 'const')) return err(`${FUSED_REDUCE_OP} unit ${j} (${s.op}) gives ${typeStr(out[0])}, neither a row nor a whole row of ${typeStr({ dtype: 'f32', shape: full })}`);
    if (kind === 'alias' && s.op !== 'reduce_sum' && s.op !== 'reduce_max') {
      const from = cls[s.args[0]];
      const ok = s.op === 'broadcast_to' ? (from === 'keep' || from === 'scalar') && (c === 'full' || c === 'keep') : (from === 'keep' || from === 'drop') && (c === 'keep' || c === 'drop');
      if (!ok || s.args[0] < inputs.length) return err(`${FUSED_REDUCE_OP} unit ${j} (${s.op}) does not move a row value within its row`);
    } else if (kind === 'compute') {
      for (const r of s.args) {
        const rc = cls[r];
        if (r >= inputs.length && (rc === undefined || !suits(rc, c))) return err(`${FUSED_REDUCE_OP} unit ${j} (${s.op}) reads register ${r} of type ${typeStr(regs[r])}, which does not broadcast along the rows of ${typeStr(out[0])}`);
      }
    }
    units.push({ ...s, kind, first, count: out.length, cls: c });
    first += out.length;
    for (let k = 0; k < out.length; k++) cls.push(c);
  }
  const n = inputs.length;
  const bad = body.outputs.find((r) => !Number.isInteger(r) || r < n || r >= regs.length || cls[r] === 'scalar');
  if (bad !== undefined) return err(`${FUSED_REDUCE_OP} output register ${bad} is not a row or whole-row unit result`);
  return { full, axes, keep, drop, regs, units, outputs: body.outputs };
}

/** The attributes of a fused_reduce body. */
export function encodeRowBody(units: readonly FusedSubOp[], outputs: readonly number[], axes: readonly number[]): Attrs {
  return {
    ops: units.map((s): AttrValue => [s.op, [...s.args], Object.entries(s.attrs).map(([k, v]): AttrValue => [k, v])]),
    outputs: [...outputs],
    axes: [...axes],
  };
}

/** A lone reduce_sum or reduce_max as a row kernel of that one unit (so it can read its input through a view), or undefined. */
export function asFusedReduce(n: Node): Node | undefined {
  if ((n.op !== 'reduce_sum' && n.op !== 'reduce_max') || n.inputs.length !== 1 || n.outputs.length !== 1 || n.inputs[0].type.dtype !== 'f32') return undefined;
  const axes = reduceAxes(n.op, n.inputs[0].type, n.attrs);
  if (!Array.isArray(axes)) return undefined;
  return { ...n, op: FUSED_REDUCE_OP, attrs: encodeRowBody([{ op: n.op, args: [0], attrs: n.attrs }], [1], axes) };
}

function inferRows(declared: readonly TensorType[], attrs: Attrs): TensorType[] | ShapeError {
  const inputs = viewedInputTypes(declared, attrs, FUSED_REDUCE_OP);
  if (typeof inputs === 'string') return err(inputs);
  const layout = rowLayout(inputs, attrs);
  if ('message' in layout) return layout;
  const axes = attrs.axes;
  if (!Array.isArray(axes) || axes.length !== layout.axes.length || !axes.every((a, i) => a === layout.axes[i])) {
    return err(`${FUSED_REDUCE_OP} axes [${String(axes)}] are not its reductions' axes [${layout.axes.join(', ')}]`);
  }
  return layout.outputs.map((r) => ({ dtype: layout.regs[r].dtype, shape: layout.regs[r].shape }));
}

registerOp({
  name: FUSED_REDUCE_OP,
  family: 'fused',
  arity: 'variadic',
  // fusion runs after autodiff: no gradient flows through a fused node
  differentiable: 'none',
  attrs: { ops: 'required', outputs: 'required', axes: 'required', views: 'optional', out_views: 'optional' },
  lower: { kind: 'kernel', kernel: fusedReducePlans },
  infer: (inputs, attrs) => withOutputViews(inferRows(inputs, attrs), attrs, FUSED_REDUCE_OP),
  interpret(inputs, attrs, env) {
    const body = decodeFusedBody(attrs);
    if (typeof body === 'string') throw new Error(body);
    // each unit through its own interpreter: the same float64 operations as the unfused graph
    const regs: Tensor[] = viewedInputs(inputs, attrs, env, FUSED_REDUCE_OP);
    for (const s of body.ops) regs.push(...getOp(s.op)!.interpret(s.args.map((k) => regs[k]), s.attrs, env));
    return body.outputs.map((r) => regs[r]);
  },
});

export type { ShapeError };
