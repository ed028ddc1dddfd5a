// fused_elementwise: a chain of elementwise sub-ops (and scalar-like constants) computed by one kernel.
//
// The fusion pass (compiler/optimize/fuse.ts) builds these after autodiff and the optimize passes; the
// attributes carry the body:
//   ops:     one entry per sub-op, `[name, [refs...], [[key, value], ...]]`, in evaluation order;
//   outputs: the refs the node returns, in order.
// A ref names a register: 0..n-1 are the node's inputs, n + j is the result of sub-op j. A sub-op is
// an elementwise primitive, `full` (no operands: a constant the kernel reads from its uniform), or a
// random draw (random_uniform, random_normal of its key operand: drawn at each element's flat index, so
// its shape is the iteration shape; dropout's mask costs no kernel of its own). Every output has the
// same shape, the kernel's iteration shape; every input and sub-result broadcasts to it.
//   views:   optional, inputs read through a strided view (built by compiler/optimize/view-inputs.ts):
//            per entry `[input, offset, [shape...], [strides...]]`, register `input` is then the tensor
//            of `shape` whose element i0..i{r-1} is element offset + Σ i_a * strides[a] of the input's
//            row-major storage (an LSTM's gates, four column blocks of one pre-activation). An input
//            may appear more than once, each time with its own view; the kernel binds it once.
//   out_views: optional, outputs stored into a slab of a concat's buffer (optimize/concat-in-place.ts):
//            per entry `[output, offset, [strides...]]`, element i0..i{r-1} of the output is stored at
//            offset + Σ i_a * strides[a] of the buffer the lowering gives it, the in-place concat's. The
//            value is the same tensor; only where it is stored changes, so the interpreter ignores it.
//            An optional fourth element names the buffer (the concat's value id): a fused_elementwise
//            binds the outputs stored into one buffer once.
import type { AttrValue, Attrs, Node, TensorType } from '../ir/types.ts';
import type { Tensor } from '../interpret/tensor.ts';
import { dimEquals, isConcrete, isDim, type Dim } from '../shapes/dim.ts';
import { fusedPlans } from '../codegen/fused.ts';
import { getOp, inferOp, isShapeError, registerOp, type ShapeError } from './registry.ts';
import { gather, sizeIn } from './strided-copy.ts';
import { err, sameShape, typeStr } from './util.ts';

export const FUSED_OP = 'fused_elementwise';

export interface FusedSubOp {
  readonly op: string;
  readonly args: readonly number[];
  readonly attrs: Attrs;
}

export interface FusedBody {
  readonly ops: readonly FusedSubOp[];
  readonly outputs: readonly number[];
}

/** The body as attributes (plain nested lists, so printing, hashing and JSON keep working). */
export function encodeFusedBody(body: FusedBody): Attrs {
  return {
    ops: body.ops.map((s): AttrValue => [s.op, [...s.args], Object.entries(s.attrs).map(([k, v]): AttrValue => [k, v])]),
    outputs: [...body.outputs],
  };
}

/** The body from the attributes, or a message saying what is malformed. */
export function decodeFusedBody(attrs: Attrs): FusedBody | string {
  const { ops, outputs } = attrs;
  if (!Array.isArray(ops)) return `${FUSED_OP} needs an ops list`;
  if (!Array.isArray(outputs) || outputs.length === 0 || !outputs.every((r) => typeof r === 'number')) return `${FUSED_OP} needs a non-empty outputs list of register numbers`;
  const decoded: FusedSubOp[] = [];
  for (const [j, entry] of (ops as readonly AttrValue[]).entries()) {
    if (!Array.isArray(entry) || entry.length !== 3) return `${FUSED_OP} sub-op ${j} is not [name, refs, attrs]`;
    const [op, args, list] = entry as readonly AttrValue[];
    if (typeof op !== 'string' || !Array.isArray(args) || !args.every((r) => typeof r === 'number') || !Array.isArray(list)) return `${FUSED_OP} sub-op ${j} is not [name, refs, attrs]`;
    const a: Record<string, AttrValue> = {};
    for (const kv of list as readonly AttrValue[]) {
      if (!Array.isArray(kv) || kv.length !== 2 || typeof kv[0] !== 'string') return `${FUSED_OP} sub-op ${j} has a malformed attribute`;
      a[kv[0] as string] = (kv as readonly AttrValue[])[1];
    }
    decoded.push({ op, args: args as number[], attrs: a });
  }
  return { ops: decoded, outputs: outputs as number[] };
}

/** An input read through a strided view: its register is element offset + Σ i_a * strides[a] of the input, over `shape`. */
export interface InputView {
  readonly input: number;
  readonly offset: Dim;
  readonly shape: readonly Dim[];
  readonly strides: readonly Dim[];
}

/** The `views` attribute's value. */
export function encodeInputViews(views: readonly InputView[]): AttrValue {
  return views.map((v): AttrValue => [v.input, v.offset, [...v.shape], [...v.strides]]);
}

/** The views of a node's attributes (none when it has no `views`), or a message saying what is malformed. */
export function decodeInputViews(attrs: Attrs, inputs: number, op: string = FUSED_OP): InputView[] | string {
  const { views } = attrs;
  if (views === undefined) return [];
  if (!Array.isArray(views)) return `${op}'s views must be a list`;
  const out: InputView[] = [];
  for (const entry of views as readonly AttrValue[]) {
    if (!Array.isArray(entry) || entry.length !== 4) return `${op}'s views entry is not [input, offset, shape, strides]`;
    const [input, offset, shape, strides] = entry as readonly AttrValue[];
    if (typeof input !== 'number' || !Number.isInteger(input) || input < 0 || input >= inputs) return `${op}'s view of input ${String(input)}: no such input`;
    if (out.some((v) => v.input === input)) return `${op} has two views of input ${input}`;
    if (!isDim(offset) || !Array.isArray(shape) || !Array.isArray(strides) || shape.length !== strides.length || ![...shape, ...strides].every(isDim)) {
      return `${op}'s view of input ${input} needs an offset, a shape and one stride per axis, all sizes`;
    }
    out.push({ input, offset, shape: shape as Dim[], strides: strides as Dim[] });
  }
  return out;
}

/** The inputs' types as the body sees them (a viewed input has its view's shape), or a message saying what is malformed. */
export function viewedInputTypes(inputs: readonly TensorType[], attrs: Attrs, op: string): TensorType[] | string {
  const views = decodeInputViews(attrs, inputs.length, op);
  if (typeof views === 'string') return views;
  return inputs.map((t, i) => {
    const v = views.find((w) => w.input === i);
    return v ? { dtype: t.dtype, shape: [...v.shape] } : t;
  });
}

/** The inputs' values as the body sees them: each viewed input gathered through its view (the interpreters). */
export function viewedInputs(inputs: readonly Tensor[], attrs: Attrs, env: { readonly sizes?: ReadonlyMap<string, number> }, op: string): Tensor[] {
  const views = decodeInputViews(attrs, inputs.length, op);
  if (typeof views === 'string') throw new Error(views);
  const size = sizeIn(env);
  const out = [...inputs];
  for (const v of views) out[v.input] = gather(op, inputs[v.input], v.shape.map(size), size(v.offset), v.strides.map(size));
  return out;
}

/** An output stored into a slab of a larger buffer: element i at offset + Σ i_a * strides[a]; outputs with one `buffer` (the concat's value id) are slabs of one buffer, bound once. */
export interface OutputView {
  readonly output: number;
  readonly offset: Dim;
  readonly strides: readonly Dim[];
  readonly buffer?: number;
}

/** The `out_views` attribute's value. */
export function encodeOutputViews(views: readonly OutputView[]): AttrValue {
  return views.map((v): AttrValue => [v.output, v.offset, [...v.strides], ...(v.buffer === undefined ? [] : [v.buffer])]);
}

/** The storage buffers a fused kernel binds: its distinct inputs, and its outputs, those stored into one buffer (`OutputView.buffer`) counted once. */
export function boundBuffers(n: Node): number {
  const views = decodeOutputViews(n.attrs, n.outputs.map((v) => v.type), n.op);
  const bufferOf = (o: number) => (typeof views === 'string' ? undefined : views.find((v) => v.output === o)?.buffer);
  // a matmul's operands are bound apart from the body's inputs, even where one of them is read there too
  const lead = MATMUL_OPERAND_OPS.has(n.op) ? 2 : 0;
  return lead + new Set(n.inputs.slice(lead).map((v) => v.id)).size + new Set(n.outputs.map((v, o) => bufferOf(o) ?? `own ${v.id}`)).size;
}

/** The fused ops whose first two inputs are a matmul's operands, bound on their own and read through no view (ops/fused-matmul.ts, ops/fused-matmul-columns.ts). */
export const MATMUL_OPERAND_OPS: ReadonlySet<string> = new Set(['fused_matmul', 'fused_matmul_columns']);

/** The fused ops whose kernel is fused_elementwise's (codegen/fused.ts), which stores any register of its body per element: several results into one buffer, or a copy of one. */
export const PER_ELEMENT_BODY_OPS: ReadonlySet<string> = new Set([FUSED_OP, 'fused_matmul_columns']);

/** The output views of a node's attributes (none without `out_views`), checked against its result types, or a message saying what is malformed. */
export function decodeOutputViews(attrs: Attrs, outputs: readonly TensorType[], op: string = FUSED_OP): OutputView[] | string {
  const { out_views: views } = attrs;
  if (views === undefined) return [];
  if (!Array.isArray(views)) return `${op}'s out_views must be a list`;
  const out: OutputView[] = [];
  for (const entry of views as readonly AttrValue[]) {
    if (!Array.isArray(entry) || entry.length < 3 || entry.length > 4) return `${op}'s out_views entry is not [output, offset, strides, buffer?]`;
    const [output, offset, strides, buffer] = entry as readonly AttrValue[];
    if (buffer !== undefined && (typeof buffer !== 'number' || !Number.isInteger(buffer))) return `${op}'s view of output ${String(output)} names its buffer by a value id`;
    if (typeof output !== 'number' || !Number.isInteger(output) || output < 0 || output >= outputs.length) return `${op}'s view of output ${String(output)}: no such output`;
    if (out.some((v) => v.output === output)) return `${op} has two views of output ${output}`;
    if (!isDim(offset) || !Array.isArray(strides) || strides.length !== outputs[output].shape.length || !strides.every(isDim)) {
      return `${op}'s view of output ${output} needs an offset and one stride per axis of the output, all sizes`;
    }
    out.push({ output, offset, strides: strides as Dim[], ...(buffer === undefined ? {} : { buffer: buffer as number }) });
  }
  return out;
}

/** The result types, once `out_views` (if any) is checked against them; the registries' infer returns this. */
export function withOutputViews(types: TensorType[] | ShapeError, attrs: Attrs, op: string): TensorType[] | ShapeError {
  if (isShapeError(types) || attrs.out_views === undefined) return types;
  const views = decodeOutputViews(attrs, types, op);
  return typeof views === 'string' ? err(views) : types;
}

/** Whether `shape` broadcasts to `to` by numpy's rule, deciding statically (only a constant 1 stretches). */
export function broadcastsTo(shape: readonly Dim[], to: readonly Dim[]): boolean {
  if (shape.length > to.length) return false;
  const lead = to.length - shape.length;
  return shape.every((d, a) => (isConcrete(d) && d === 1) || dimEquals(d, to[lead + a]));
}

/** Whether an op may appear in a fused body. */
export function isFusableSubOp(op: string): boolean {
  if (op === 'full') return true;
  const def = getOp(op);
  return !!def && def.family === 'elementwise' && def.lower?.kind === 'elementwise' && !!def.lower.expr;
}

/**
 * A sub-op drawn from a counter-based generator (random_uniform, random_normal; ops/random.ts): element i
 * is a function of the key, the stream and i alone, so a kernel draws it at the element it computes. i is
 * the element's flat index in the kernel's iteration shape, which the draw's shape must therefore be (a
 * fused_elementwise, or a matmul's or convolution's epilogue: every kernel that knows that index).
 */
export function isRandomSubOp(op: string): boolean {
  return getOp(op)?.family === 'random';
}

/** A node a fused kernel can draw in its body: an f32 random_uniform or random_normal of its key. */
export function isFusableDraw(n: Node): boolean {
  return isRandomSubOp(n.op) && n.inputs.length === 1 && n.outputs.length === 1 && n.outputs[0].type.dtype === 'f32';
}

/** Whether a fused body (`ops` attributes) draws random numbers: such a body is computed only where its element index is the iteration's. */
export function drawsRandom(attrs: Attrs): boolean {
  const ops = attrs.ops;
  return Array.isArray(ops) && (ops as readonly AttrValue[]).some((e) => Array.isArray(e) && typeof e[0] === 'string' && isRandomSubOp(e[0]));
}

/**
 * The first register that does not fit a kernel iterating over `shape`, or -1: every register must
 * broadcast to it, and a random draw must be exactly it (its element i is the iteration's element i).
 */
export function misfitRegister(regs: readonly TensorType[], body: FusedBody, inputs: number, shape: readonly Dim[]): number {
  return regs.findIndex((t, r) => {
    if (!broadcastsTo(t.shape, shape)) return true;
    const s = r >= inputs ? body.ops[r - inputs] : undefined;
    return !!s && isRandomSubOp(s.op) && !sameShape(t.shape, shape);
  });
}

/** A lone elementwise primitive (one result) as a fused_elementwise of one sub-op; undefined for any other node. */
export function asFusedElementwise(n: Node): Node | undefined {
  if (n.op === 'full' || !isFusableSubOp(n.op) || n.outputs.length !== 1) return undefined;
  return { ...n, op: FUSED_OP, attrs: encodeFusedBody({ ops: [{ op: n.op, args: n.inputs.map((_, i) => i), attrs: n.attrs }], outputs: [n.inputs.length] }) };
}

/** A `full` a kernel can read from its uniform: a number, a boolean or a size. */
export function isInlinableConstant(attrs: Attrs): boolean {
  const v = attrs.value;
  return typeof v === 'number' || typeof v === 'boolean' || (typeof v === 'object' && v !== null && isDim(v));
}

/**
 * A `full` constant (a number, a boolean or a size; not f16) as a fused_elementwise of its one sub-op
 * and no inputs, so that a kernel can store it where another kernel's output view says (an RNN's zero
 * initial state as the first block of a stack of states, optimize/concat-in-place.ts); else undefined.
 */
export function asFusedFull(n: Node): Node | undefined {
  if (n.op !== 'full' || n.inputs.length !== 0 || n.outputs.length !== 1 || n.outputs[0].type.dtype === 'f16' || !isInlinableConstant(n.attrs)) return undefined;
  return { ...n, op: FUSED_OP, attrs: encodeFusedBody({ ops: [{ op: 'full', args: [], attrs: n.attrs }], outputs: [0] }) };
}

/** Every register's type (inputs, then sub-results), or why the body does not type-check. */
export function fusedRegisterTypes(inputs: readonly TensorType[], body: FusedBody): TensorType[] | ShapeError {
  const regs: TensorType[] = [...inputs];
  for (const [j, s] of body.ops.entries()) {
    if (!isFusableSubOp(s.op) && !isRandomSubOp(s.op)) return err(`${FUSED_OP} sub-op ${j} is ${s.op}, which is not elementwise`);
    if (s.op === 'full' ? s.args.length !== 0 : false) return err(`${FUSED_OP} sub-op ${j} (full) takes no operands`);
    const bad = s.args.find((r) => !Number.isInteger(r) || r < 0 || r >= regs.length);
    if (bad !== undefined) return err(`${FUSED_OP} sub-op ${j} (${s.op}) refers to register ${bad}, which is not defined before it`);
    const r = inferOp(s.op, s.args.map((k) => regs[k]), s.attrs);
    if (isShapeError(r)) return err(`${FUSED_OP} sub-op ${j}: ${r.message}`);
    if (r.length !== 1) return err(`${FUSED_OP} sub-op ${j} (${s.op}) has ${r.length} results, not 1`);
    regs.push(r[0]);
  }
  return regs;
}

/** fused_elementwise's result types (its shape rule, before any out_views). */
function inferFused(declared: readonly TensorType[], attrs: Attrs): TensorType[] | ShapeError {
  const body = decodeFusedBody(attrs);
  if (typeof body === 'string') return err(body);
  const inputs = viewedInputTypes(declared, attrs, FUSED_OP);
  if (typeof inputs === 'string') return err(inputs);
  const regs = fusedRegisterTypes(inputs, body);
  if (isShapeError(regs)) return regs;
  const n = inputs.length;
  const bad = body.outputs.find((r) => !Number.isInteger(r) || r < n || r >= regs.length);
  if (bad !== undefined) return err(`${FUSED_OP} output register ${bad} is not a sub-op result`);
  const outs = body.outputs.map((r) => regs[r]);
  const shape = outs[0].shape;
  const mismatch = outs.find((t) => !sameShape(t.shape, shape));
  if (mismatch) return err(`${FUSED_OP} outputs have different shapes: ${typeStr(outs[0])} and ${typeStr(mismatch)}`);
  const wide = misfitRegister(regs, body, n, shape);
  if (wide >= 0) return err(`${FUSED_OP} register ${wide} of type ${typeStr(regs[wide])} does not ${wide >= n && isRandomSubOp(body.ops[wide - n].op) ? 'draw exactly' : 'broadcast to'} the output shape ${typeStr(outs[0])}`);
  return outs.map((t) => ({ dtype: t.dtype, shape: t.shape }));
}

registerOp({
  name: FUSED_OP,
  family: 'fused',
  // no inputs at all: a constant stored into a slab (asFusedFull)
  arity: 'variadic0',
  // fusion runs after autodiff: no gradient flows through a fused node
  differentiable: 'none',
  attrs: { ops: 'required', outputs: 'required', views: 'optional', out_views: 'optional' },
  lower: { kind: 'kernel', kernel: fusedPlans },
  infer: (declared, attrs) => withOutputViews(inferFused(declared, attrs), attrs, FUSED_OP),
  interpret(inputs, attrs, env) {
    const body = decodeFusedBody(attrs);
    if (typeof body === 'string') throw new Error(body);
    // each sub-op through its own interpreter: the same float64 operations as the unfused graph
    const regs: Tensor[] = viewedInputs(inputs, attrs, env, FUSED_OP);
    for (const s of body.ops) regs.push(getOp(s.op)!.interpret(s.args.map((k) => regs[k]), s.attrs, env)[0]);
    return body.outputs.map((r) => regs[r]);
  },
});
