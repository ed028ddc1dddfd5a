// Elementwise fusion: chains of elementwise and broadcast nodes become one fused_elementwise node (one dispatch).
//
// Greedy, consumer first: nodes are visited from the last to the first, so when a node is visited all
// its consumers have been placed. A fusible node (an elementwise primitive with a WGSL expression and
// no f16; or an f32 random draw, which a kernel draws at its element index) joins the group of one of its consumers when
//   - its shape is the group's (the shape of the group's last node): then it may also be used outside
//     the group, and becomes an extra output; or its shape broadcasts to the group's and every use of
//     it is inside the group (a scalar chain recomputed per element, never stored; not a random draw,
//     whose element is the group's);
//   - joining creates no cycle between groups: no other consumer of it reaches the group;
//   - the fused kernel stays within 8 storage buffers (inputs plus outputs).
// Otherwise it starts a group of its own. `full` constants (numbers, booleans, sizes) are not group
// members: each group that reads one folds it into its body (a uniform word, no buffer), and the node
// stays only while something outside a group still reads it. So do one-element elementwise nodes of
// constants only (the 1/B a mean's gradient starts from): each group recomputes them as sub-ops. A group of one node with no constant is
// left as it was. Every value keeps its id: a fused node's outputs are the values its members defined,
// so the graph's outputs, losses and updates are untouched. Fusion runs after autodiff and the
// optimize passes (it is applied when lowering, compiler/codegen/program.ts).
//
// Matmul epilogues: once the groups are settled, each f32 matmul (in graph order) merges into the group
// of one of its consumers (the first, in consumer order, that qualifies) and the group becomes one
// fused_matmul node: the matmul, then the group's body applied to each element as it is stored. The
// group qualifies when it computes the matmul result's shape (the kernel iterates the matmul's output),
// has no matmul yet, merging creates no cycle (no other consumer of the matmul result reaches the
// group), and the kernel stays within the storage buffers (a, b, the group's other inputs, its outputs).
// The matmul result may also be used outside the group (by another group, a reduction, the backward
// pass, or as a graph result): then the fused node stores it as one more output (register 0 of the
// body), which costs a store but still saves the dispatch and the epilogue's re-read of the result. A
// lone elementwise consumer (a bias add) counts as a group, so `x @ w + b` is one kernel.
//
// Matmul prologues: before the epilogues, a transpose that swaps the last two axes (perm [0, .., r-1, r-2])
// and is read only by f32 matmuls is folded into each of them: the matmul reads the transpose's operand
// with its `transpose_a` / `transpose_b` attribute flipped (ops/matmul.ts; both matmul kernels read a
// transposed operand through its own indexing, codegen/matmul.ts) and the transpose, its dispatch and its
// copy disappear. Autodiff emits these everywhere (dW = x^T @ dy, dx = dy @ w^T, attention's q @ k^T). A
// transpose also read by anything else (or a graph result) stays, and so do its matmuls' reads of it
// (reason `shared`: folding would save nothing). A transpose of another perm p read only by matmuls
// folds the same way when the graph also transposes the same operand by p with its last two entries
// swapped (a sibling, earlier than the matmuls): the matmuls read the sibling's result with the flag
// flipped. Attention makes these: k goes to heads as [B, h, T, d] (for the values' gradient) and as
// [B, h, d, T] (for q @ k^T), and so do q and v in the backward pass. The matmul then takes its
// epilogue as any other, and a fused_matmul keeps the transposes among its attributes. Likewise a
// transpose by [1, 0, 2, 3] read only by f32 conv2d nodes of one group (a weight gradient reads x and dy
// so) folds into them: the conv2d reads the operand with `transpose_x` / `transpose_w` (ops/conv.ts); and
// one that is a conv2d result's only reader (the weight gradient back to OIHW) makes it store its result
// so (`transpose_out`): such a conv2d then takes no epilogue (the transpose, its result's reader, is none).
//
// Convolution epilogues: then each f32 conv2d and conv_transpose2d (in graph order) merges the same way,
// by the same rules, into a group no matmul or other convolution has taken, and the group becomes one
// fused_conv2d or fused_conv_transpose2d node: the convolution's per-element loop, then the body applied
// to the sum before it is stored (a bias add, batch norm, ReLU, the ReLU gradient's mask after a
// conv_transpose2d in the backward pass). Matmuls go first, so their decisions do not depend on the
// convolutions. Both kinds of anchor are f32 only and have two operands (x and w, or a and b).
import '../ops/index.ts';
import { encodeFusedBody, FUSED_OP, type FusedSubOp, broadcastsTo, isFusableDraw, isInlinableConstant, isRandomSubOp } from '../ops/fused.ts';
import { FUSED_CONV_OPS } from '../ops/fused-conv.ts';
import { FUSED_MATMUL_OP } from '../ops/fused-matmul.ts';
import { transposeAttrs } from '../ops/matmul.ts';
import { matmulTransposes } from '../codegen/matmul.ts';
import { getOp } from '../ops/registry.ts';
import { graphUses } from '../ir/uses.ts';
import { GroupOrder, successors, VisitMarks } from '../ir/reach.ts';
import { contractGroups, type Contraction } from './contract.ts';
import type { Graph, Node, Value } from '../ir/types.ts';
import { dimEquals, shapeToString } from '../shapes/dim.ts';

/** The most storage buffers one shader stage may bind (WebGPU's default maxStorageBuffersPerShaderStage). */
export const MAX_STORAGE_BUFFERS = 8;

/**
 * Why a candidate did not fuse: the storage-buffer limit, a cycle between groups, a shape that is not the
 * group's, a group reading no buffer, or a group already taken by another anchor: `matmul` when the
 * candidate is a matmul, `conv` when it is a convolution; `shared` for a transpose that a matmul cannot
 * fold because something else reads it too; `fmas` for a product read as column blocks whose reader
 * would run too many fmas per element to compute them (optimize/matmul-columns.ts).
 */
export type FuseReason = 'bindings' | 'cycle' | 'shape' | 'no-inputs' | 'matmul' | 'conv' | 'shared' | 'fmas';

/** A node that could have joined a consumer's group but did not, and why. */
export interface FuseRejection {
  /** Index of the node in the input graph. */
  readonly node: number;
  readonly op: string;
  /** Index (in the input graph) of the last node of the group it was refused by. */
  readonly group: number;
  readonly reason: FuseReason;
  readonly detail: string;
}

export interface FusedGroup {
  /**
   * fused_elementwise, or fused_matmul / fused_conv2d / fused_conv_transpose2d when the group is the
   * epilogue of a matmul or a convolution (then `nodes[0]` is that anchor).
   */
  readonly op: string;
  /** The member nodes' indices in the input graph, in order. */
  readonly nodes: readonly number[];
  readonly ops: readonly string[];
  readonly inputs: number;
  readonly outputs: number;
  readonly constants: number;
}

/** A transpose folded into a matmul's operand (a matmul prologue). */
export interface FusedPrologue {
  /** Indices in the input graph of the transpose (now gone) and of the matmul (or conv2d) that reads its operand. */
  readonly transpose: number;
  readonly matmul: number;
  /** The operand read: a matmul's a or b; a conv2d's input (a) or weights (b), or its result (out: the transpose read the conv2d). */
  readonly operand: 'a' | 'b' | 'out';
  /**
   * For a transpose that is not a swap of the last two axes: the sibling transpose of the same operand
   * whose result the matmul reads instead (its perm is this one's with the last two entries swapped).
   */
  readonly sibling?: number;
}

export interface FuseReport {
  readonly nodesBefore: number;
  readonly nodesAfter: number;
  readonly groups: readonly FusedGroup[];
  readonly rejected: readonly FuseRejection[];
  readonly prologues: readonly FusedPrologue[];
  /** The super-nodes the cycle checks searched and the nodes the order's upkeep visited, in all: the pass's work, which grows with the graph's size (tests count it). */
  readonly visited: number;
}

export interface FuseOptions {
  /** Storage buffers a fused kernel may bind (default 8); tests lower it to see the limit at work. */
  readonly maxStorageBuffers?: number;
  /** Merge matmuls into their epilogue groups (fused_matmul; default true). */
  readonly matmul?: boolean;
  /** Merge conv2d and conv_transpose2d into their epilogue groups (fused_conv2d, fused_conv_transpose2d; default true). */
  readonly conv?: boolean;
  /** Fold transposes of the last two axes into the matmuls that read them (default true). */
  readonly prologues?: boolean;
}

function hasF16(n: Node): boolean {
  return [...n.inputs, ...n.outputs].some((v) => v.type.dtype === 'f16');
}

/** An elementwise primitive the fused generator can compose, or an f32 random draw (drawn at the group's element index). */
function fusible(n: Node): boolean {
  const def = getOp(n.op);
  if (isRandomSubOp(n.op)) return isFusableDraw(n);
  return !!def && def.family === 'elementwise' && def.lower?.kind === 'elementwise' && !!def.lower.expr && n.outputs.length === 1 && !hasF16(n);
}

/** A `full` the fused kernel can read from its uniform. */
function inlinableConstant(n: Node): boolean {
  return n.op === 'full' && !hasF16(n) && n.outputs.length === 1 && isInlinableConstant(n.attrs);
}

/**
 * A one-element elementwise node whose operands are all constants (`full`s or such nodes): recomputed
 * inside each fused group that reads it, like a `full`, so it costs no dispatch and no buffer.
 */
function constantExpression(n: Node, isConstValue: (v: Value) => boolean): boolean {
  return fusible(n) && !isRandomSubOp(n.op) && n.inputs.length > 0 && n.inputs.every(isConstValue) && n.outputs[0].type.shape.every((d) => d === 1);
}

/** A transpose that swaps only the last two axes: perm [0, 1, .., r-1, r-2]. */
function swapsLastTwo(n: Node): boolean {
  const perm = n.attrs.perm;
  if (!Array.isArray(perm) || perm.length < 2) return false;
  const r = perm.length;
  return perm.every((p, i) => p === (i === r - 2 ? r - 1 : i === r - 1 ? r - 2 : i));
}

/** A perm with its last two entries swapped: transpose(x, p) is the swap of the last two axes of transpose(x, that). */
function swapLastEntries(perm: readonly number[]): number[] {
  const r = perm.length;
  return perm.map((p, i) => (i === r - 2 ? perm[r - 1] : i === r - 1 ? perm[r - 2] : p));
}

/** An f32 transpose by [1, 0, 2, 3]: a conv2d reads or stores such an operand in place (transpose_x, transpose_w, transpose_out). */
function swapsFirstTwoOf4(n: Node): boolean {
  const perm = n.attrs.perm;
  return n.op === 'transpose' && n.outputs.length === 1 && n.outputs[0].type.dtype === 'f32' && Array.isArray(perm) && perm.join() === '1,0,2,3';
}

/** A conv2d that can read an operand (or store its result: `out`) with the first two axes swapped: f32, groups 1, none so yet. */
function convOperandFolds(n: Node, out = false): boolean {
  const groups = n.attrs.groups ?? 1;
  const swapped = out ? n.attrs.transpose_out === true : n.attrs.transpose_x === true || n.attrs.transpose_w === true;
  return n.op === 'conv2d' && n.inputs.length === 2 && n.outputs.length === 1 && groups === 1 && n.outputs[0].type.dtype === 'f32' && !hasF16(n) && !swapped;
}

/** A matmul the kernels lower and the fusion pass may rewrite (f32, a and b). */
function matmulAnchor(n: Node): boolean {
  return n.op === 'matmul' && n.inputs.length === 2 && n.outputs.length === 1 && n.outputs[0].type.dtype === 'f32' && !hasF16(n);
}

const sameShape = (a: Value, b: Value) => a.type.shape.length === b.type.shape.length && a.type.shape.every((d, i) => dimEquals(d, b.type.shape[i]));

interface Group {
  readonly id: number;
  /** Member node indices (unordered while growing). */
  readonly members: Set<number>;
  /** The group's iteration shape: its last node's output. */
  readonly shapeOf: Value;
}

/** The fused graph and what the pass decided. Pure: the input graph is not changed. */
export function fuseWithReport(g: Graph, options: FuseOptions = {}): { graph: Graph; report: FuseReport } {
  const maxBuffers = options.maxStorageBuffers ?? MAX_STORAGE_BUFFERS;
  const nodes = g.nodes;
  const N = nodes.length;
  const uses = graphUses(g);
  const { producer, consumers, results } = uses;

  // constants: `full` scalars, and one-element elementwise nodes of constants only (the 1/B of a mean's
  // gradient), which every group that reads one recomputes as sub-ops instead of reading a buffer
  const constant: boolean[] = [];
  const isConstValue = (v: Value) => {
    const p = producer.get(v.id);
    return p !== undefined && constant[p];
  };
  for (const n of nodes) constant.push(inlinableConstant(n) || constantExpression(n, isConstValue));
  // the super-node of every node: a group id (its last node's index) or the node's own index
  const superOf = new Int32Array(N).map((_, k) => k);
  const groups = new Map<number, Group>();
  const rejected: FuseRejection[] = [];

  const succ = successors(g, uses);
  // a topological order with each group's members side by side (ir/reach.ts), settled after each join
  const placed = new GroupOrder(N, succ, (k) => groups.get(superOf[k])?.members);
  const join = (grp: Group, m: number) => {
    grp.members.add(m);
    superOf[m] = grp.id;
  };
  const joinSettled = (grp: Group, m: number) => {
    join(grp, m);
    placed.settle(grp.members);
  };

  /**
   * Whether super-node `from` reaches super-node `to` along data edges (through any nodes). Every
   * super-node on such a path but the last is placed before `to` in the order above, so no other is
   * searched (node numbers gave a bound that, in an unrolled recurrence, took in every later step).
   */
  const marks = new VisitMarks(N);
  const stack: number[] = [];
  let visited = 0;
  const reaches = (from: number, to: number): boolean => {
    const { pos } = placed;
    const last = pos[to];
    if (pos[from] >= last) return false;
    marks.begin();
    marks.visit(from);
    stack.length = 0;
    stack.push(from);
    // super-node s's consumers: `to` itself, or super-nodes not yet seen that are placed before it
    const step = (m: number): boolean => {
      for (let e = succ.start[m]; e < succ.start[m + 1]; e++) {
        const t = superOf[succ.next[e]];
        if (t === to) return true;
        if (pos[t] < last && marks.visit(t)) stack.push(t);
      }
      return false;
    };
    while (stack.length > 0) {
      const s = stack.pop()!;
      visited++;
      const grp = groups.get(s);
      if (grp === undefined) {
        if (step(s)) return true;
      } else for (const m of grp.members) if (step(m)) return true;
    }
    return false;
  };

  /** The buffers the group binds: its non-constant inputs and the members used outside it. */
  const bindings = (members: ReadonlySet<number>): { inputs: number; outputs: number } => {
    const ins = new Set<number>();
    let outs = 0;
    for (const m of members) {
      for (const v of nodes[m].inputs) {
        const p = producer.get(v.id);
        if ((p === undefined || !members.has(p)) && !isConstValue(v)) ins.add(v.id);
      }
      const out = nodes[m].outputs[0];
      if (results.has(out.id) || (consumers.get(out.id) ?? []).some((c) => !members.has(c))) outs++;
    }
    return { inputs: ins.size, outputs: outs };
  };

  // each growing group's bindings, kept as it grows (recounting them per join made a long chain quadratic):
  // members join in reverse graph order, so a new member reads no member's value, and what the group
  // reads from it stops being an input
  const bound = new Map<number, { inputs: Set<number>; outputs: number }>();
  const boundOf = (grp: Group) => {
    let b = bound.get(grp.id);
    if (!b) {
      const all = bindings(grp.members);
      const inputs = new Set<number>();
      for (const m of grp.members) for (const v of nodes[m].inputs) if (!grp.members.has(producer.get(v.id) ?? -1) && !isConstValue(v)) inputs.add(v.id);
      b = { inputs, outputs: all.outputs };
      bound.set(grp.id, b);
    }
    return b;
  };
  const withMember = (grp: Group, k: number) => {
    const b = boundOf(grp);
    const out = nodes[k].outputs[0];
    const inputs = new Set(b.inputs);
    inputs.delete(out.id);
    for (const v of nodes[k].inputs) if (!isConstValue(v)) inputs.add(v.id);
    const external = results.has(out.id) || (consumers.get(out.id) ?? []).some((c) => !grp.members.has(c));
    return { inputs, outputs: b.outputs + (external ? 1 : 0) };
  };

  for (let k = N - 1; k >= 0; k--) {
    const n = nodes[k];
    if (constant[k] || !fusible(n)) continue;
    const out = n.outputs[0];
    const uses = consumers.get(out.id) ?? [];
    const candidates = [...new Set(uses.filter((c) => groups.has(superOf[c])).map((c) => superOf[c]))];
    let joined: Group | undefined;
    const refusals: FuseRejection[] = [];
    for (const id of candidates) {
      const grp = groups.get(id)!;
      const reject = (reason: FuseReason, detail: string) => refusals.push({ node: k, op: n.op, group: id, reason, detail });
      const inside = uses.every((c) => superOf[c] === id) && !results.has(out.id);
      if (!sameShape(out, grp.shapeOf) && !(inside && !isRandomSubOp(n.op) && broadcastsTo(out.type.shape, grp.shapeOf.type.shape))) {
        const why = isRandomSubOp(n.op) ? ' (a random draw joins only a group of its own shape: it is drawn at the element index)' : inside ? '' : ' and the value is used outside it';
        reject('shape', `${n.op} gives ${shapeToString(out.type.shape)}, the group computes ${shapeToString(grp.shapeOf.type.shape)}${why}`);
        continue;
      }
      const others = [...new Set(uses.map((c) => superOf[c]).filter((s) => s !== id))];
      const via = others.find((s) => reaches(s, id));
      if (via !== undefined) {
        reject('cycle', `node ${via} uses ${n.op}'s value and feeds the group: fusing would make a cycle`);
        continue;
      }
      const b = withMember(grp, k);
      if (b.inputs.size + b.outputs > maxBuffers) {
        reject('bindings', `the fused kernel would bind ${b.inputs.size} inputs and ${b.outputs} outputs, over the limit of ${maxBuffers} storage buffers`);
        continue;
      }
      joined = grp;
      bound.set(grp.id, b);
      break;
    }
    if (joined) joinSettled(joined, k);
    else {
      rejected.push(...refusals);
      groups.set(k, { id: k, members: new Set([k]), shapeOf: out });
    }
  }

  // ---- one-element groups merge: a step's scalar arithmetic (a schedule's learning rate, Adam's bias
  // corrections, the step count) feeds groups of other shapes, so each chain is a group of its own; in
  // graph order, each joins the first earlier group of its shape that it can (no path between the two
  // through a third kernel, the storage-buffer limit), and they run as one dispatch
  const single = (grp: Group) => grp.shapeOf.type.shape.every((d) => d === 1);
  const around = (from: Group, to: Group): boolean =>
    [...from.members].some((m) =>
      nodes[m].outputs.some((v) => (consumers.get(v.id) ?? []).some((c) => superOf[c] !== from.id && superOf[c] !== to.id && reaches(superOf[c], to.id))),
    );
  const merged: Group[] = [];
  for (const grp of [...groups.values()].filter(single).sort((a, b) => a.id - b.id)) {
    const into = merged.find((acc) => {
      if (!sameShape(acc.shapeOf, grp.shapeOf) || around(acc, grp) || around(grp, acc)) return false;
      const b = bindings(new Set([...acc.members, ...grp.members]));
      return b.inputs + b.outputs <= maxBuffers;
    });
    if (!into) {
      merged.push(grp);
      continue;
    }
    for (const m of grp.members) join(into, m);
    groups.delete(grp.id);
    placed.settle(into.members);
  }

  // ---- matmul prologues: transposes folded into the matmuls that read them --------------------------
  const rewritten = new Map<number, Node>(); // matmul index -> the matmul reading the transposes' operands
  const foldedTransposes = new Set<number>();
  const prologues: FusedPrologue[] = [];
  if (options.prologues !== false) {
    // transposes by operand, for the siblings: transpose(x, p) read by matmuls is the last-two-axes swap of
    // transpose(x, p'), p' = p with its last two entries swapped, so where the graph also computes the
    // latter (attention: k permuted to heads [B, h, T, d] for v and to [B, h, d, T] for q @ k^T), the
    // matmuls read it with the transpose flag flipped and the first transpose goes
    const transposesOf = new Map<number, number[]>();
    nodes.forEach((n, k) => {
      if (n.op === 'transpose' && n.outputs.length === 1) (transposesOf.get(n.inputs[0].id) ?? transposesOf.set(n.inputs[0].id, []).get(n.inputs[0].id)!).push(k);
    });
    const siblingOf = (k: number, readers: readonly number[]): number | undefined => {
      const want = swapLastEntries(nodes[k].attrs.perm as number[]);
      return (transposesOf.get(nodes[k].inputs[0].id) ?? []).find((j) => {
        const perm = nodes[j].attrs.perm as number[];
        return j !== k && !foldedTransposes.has(j) && perm.length === want.length && perm.every((p, i) => p === want[i]) && readers.every((c) => j < c);
      });
    };
    for (let k = 0; k < N; k++) {
      const n = nodes[k];
      if (n.op !== 'transpose' || n.outputs.length !== 1 || n.outputs[0].type.dtype !== 'f32' || !Array.isArray(n.attrs.perm)) continue;
      const out = n.outputs[0];
      const uses = consumers.get(out.id) ?? [];
      const mms = uses.filter((c) => matmulAnchor(nodes[c]));
      if (mms.length === 0) continue;
      const sibling = swapsLastTwo(n) ? undefined : siblingOf(k, mms);
      if (!swapsLastTwo(n) && sibling === undefined) continue;
      const other = uses.find((c) => !matmulAnchor(nodes[c]));
      if (other !== undefined || results.has(out.id)) {
        const why = other !== undefined ? `the ${nodes[other].op} at node ${other} also reads` : 'the graph returns';
        for (const c of mms) rejected.push({ node: k, op: n.op, group: c, reason: 'shared', detail: `${why} the transposed value: the transpose stays and the matmul reads its result` });
        continue;
      }
      foldedTransposes.add(k);
      // the matmuls read the transpose's operand, or the sibling's result, with the flag flipped
      const source = sibling === undefined ? n.inputs[0] : nodes[sibling].outputs[0];
      for (const c of mms) {
        const mm = rewritten.get(c) ?? nodes[c];
        const inputs = [...mm.inputs];
        const t = { ...matmulTransposes(mm.attrs) };
        for (const i of [0, 1] as const) {
          if (nodes[c].inputs[i].id !== out.id) continue;
          inputs[i] = source;
          if (i === 0) t.a = !t.a;
          else t.b = !t.b;
          prologues.push({ transpose: k, matmul: c, operand: i === 0 ? 'a' : 'b', ...(sibling === undefined ? {} : { sibling }) });
        }
        const { transpose_a: _a, transpose_b: _b, ...rest } = mm.attrs;
        rewritten.set(c, { ...mm, inputs, attrs: { ...rest, ...transposeAttrs(t.a, t.b) } });
      }
    }
    // conv2d prologues: a weight gradient convolves transpose(x, [1, 0, 2, 3]) with transpose(dy, [1, 0, 2, 3])
    // (the batch contracted like a channel); conv2d reads either operand with its first two axes swapped
    for (let k = 0; k < N; k++) {
      const n = nodes[k];
      if (!swapsFirstTwoOf4(n)) continue;
      const out = n.outputs[0];
      const uses = consumers.get(out.id) ?? [];
      const reads = (c: number) => nodes[c].inputs.filter((v) => v.id === out.id).length;
      if (uses.length === 0 || results.has(out.id) || !uses.every((c) => convOperandFolds(nodes[c]) && reads(c) === 1)) continue;
      foldedTransposes.add(k);
      for (const c of uses) {
        const conv = rewritten.get(c) ?? nodes[c];
        const at = nodes[c].inputs[0].id === out.id ? 0 : 1;
        const flag = at === 0 ? 'transpose_x' : 'transpose_w';
        const inputs = conv.inputs.map((v, i) => (i === at ? n.inputs[0] : v));
        rewritten.set(c, { ...conv, inputs, attrs: { ...conv.attrs, [flag]: true } });
        prologues.push({ transpose: k, matmul: c, operand: at === 0 ? 'a' : 'b' });
      }
    }
    // and the weight gradient's result, [C, O, KH, KW], transposed back to OIHW: where the transpose is its
    // one reader, the conv2d stores its result so (`transpose_out`) and defines the transpose's value
    for (let k = 0; k < N; k++) {
      const n = nodes[k];
      if (!swapsFirstTwoOf4(n)) continue;
      const c = producer.get(n.inputs[0].id);
      if (c === undefined || !convOperandFolds(nodes[c], true) || results.has(n.inputs[0].id) || (consumers.get(n.inputs[0].id) ?? []).length !== 1) continue;
      const conv = rewritten.get(c) ?? nodes[c];
      foldedTransposes.add(k);
      rewritten.set(c, { ...conv, attrs: { ...conv.attrs, transpose_out: true }, outputs: [n.outputs[0]] });
      prologues.push({ transpose: k, matmul: c, operand: 'out' });
    }
  }

  // ---- matmul and convolution epilogues: an anchor joins a consumer group --------------------------
  const anchorOf = new Map<number, number>(); // group id -> its anchor's node index (a matmul or a convolution)
  const isConv = (op: string): op is keyof typeof FUSED_CONV_OPS => Object.hasOwn(FUSED_CONV_OPS, op);
  const mergeAnchors = (accepts: (op: string) => boolean, taken: FuseReason): void => {
    for (let k = 0; k < N; k++) {
      const n = nodes[k];
      if (!accepts(n.op) || n.outputs.length !== 1 || n.outputs[0].type.dtype !== 'f32' || hasF16(n)) continue;
      const out = n.outputs[0];
      const uses = consumers.get(out.id) ?? [];
      const candidates = [...new Set(uses.filter((c) => groups.has(superOf[c])).map((c) => superOf[c]))];
      for (const id of candidates) {
        const grp = groups.get(id)!;
        const reject = (reason: FuseReason, detail: string) => rejected.push({ node: k, op: n.op, group: id, reason, detail });
        if (anchorOf.has(id)) {
          reject(taken, `the group is already the epilogue of the ${nodes[anchorOf.get(id)!].op} at node ${anchorOf.get(id)}`);
          continue;
        }
        if (!sameShape(out, grp.shapeOf)) {
          reject('shape', `${n.op} gives ${shapeToString(out.type.shape)}, the group computes ${shapeToString(grp.shapeOf.type.shape)}`);
          continue;
        }
        const others = [...new Set(uses.map((c) => superOf[c]).filter((x) => x !== id))];
        const via = others.find((x) => reaches(x, id));
        if (via !== undefined) {
          reject('cycle', `node ${via} uses the ${n.op}'s value and feeds the group: fusing would make a cycle`);
          continue;
        }
        // the two operands, the group's other inputs (one binding each, even when one is an operand), the outputs
        const trial = new Set(grp.members).add(k);
        const extra = new Set<number>();
        for (const m of grp.members) for (const v of nodes[m].inputs) if (v.id !== out.id && !trial.has(producer.get(v.id) ?? -1) && !isConstValue(v)) extra.add(v.id);
        const bound = 2 + extra.size + bindings(trial).outputs;
        if (bound > maxBuffers) {
          reject('bindings', `the fused ${n.op} would bind ${bound} storage buffers, over the limit of ${maxBuffers}`);
          continue;
        }
        joinSettled(grp, k);
        anchorOf.set(id, k);
        break;
      }
    }
  };
  if (options.matmul !== false) mergeAnchors((op) => op === 'matmul', 'matmul');
  if (options.conv !== false) mergeAnchors(isConv, 'conv');

  // ---- build the fused nodes ----------------------------------------------------------------------
  const fusedAt = new Map<number, Node>(); // group id -> fused node
  const report: FusedGroup[] = [];
  const inGroup = new Uint8Array(N); // 1: member of a group that became a fused node
  for (const grp of groups.values()) {
    const members = [...grp.members].sort((a, b) => a - b);
    const memberSet = grp.members;
    const hasConst = members.some((m) => nodes[m].inputs.some(isConstValue));
    const anchorAt = anchorOf.get(grp.id);
    if (members.length === 1 && !hasConst && anchorAt === undefined) continue;
    const inputs: Value[] = [];
    const reg = new Map<number, number>(); // value id -> register (inputs first; sub-results renumbered below)
    // a matmul's or a convolution's epilogue: register 0 is the anchor's result, the body's input; the
    // anchor is no sub-op
    const anchor = anchorAt === undefined ? undefined : (rewritten.get(anchorAt) ?? nodes[anchorAt]);
    const body = anchor ? members.filter((m) => m !== anchorAt) : members;
    if (anchor) {
      reg.set(anchor.outputs[0].id, 0);
      inputs.push(anchor.outputs[0]);
    }
    const external = body.flatMap((m) => nodes[m].inputs.filter((v) => !memberSet.has(producer.get(v.id) ?? -1) && !isConstValue(v)));
    for (const v of external) {
      if (!reg.has(v.id)) {
        reg.set(v.id, inputs.length);
        inputs.push(v);
      }
    }
    if (inputs.length === 0) {
      rejected.push({ node: grp.id, op: nodes[grp.id].op, group: grp.id, reason: 'no-inputs', detail: 'a group that reads no buffer is left unfused' });
      continue;
    }
    const ops: FusedSubOp[] = [];
    const constReg = new Map<number, number>();
    let constants = 0;
    // a constant read by the group: its own constants first, then its sub-op (a full is a uniform word)
    const foldConstant = (v: Value): void => {
      if (constReg.has(v.id)) return;
      const c = nodes[producer.get(v.id)!];
      c.inputs.forEach(foldConstant);
      constReg.set(v.id, inputs.length + ops.length);
      ops.push(c.op === 'full' ? { op: 'full', args: [], attrs: c.attrs } : { op: c.op, args: c.inputs.map((w) => constReg.get(w.id)!), attrs: c.attrs });
      if (c.op === 'full') constants++;
    };
    for (const m of body) {
      const node = nodes[m];
      for (const v of node.inputs) if (isConstValue(v)) foldConstant(v);
      const args = node.inputs.map((v) => constReg.get(v.id) ?? reg.get(v.id)!);
      reg.set(node.outputs[0].id, inputs.length + ops.length);
      ops.push({ op: node.op, args, attrs: node.attrs });
    }
    for (const [id, r] of constReg) reg.set(id, r);
    const outputs = members.map((m) => nodes[m].outputs[0]).filter((v) => results.has(v.id) || (consumers.get(v.id) ?? []).some((c) => !memberSet.has(c)));
    if (outputs.length === 0) continue; // dead code: left for dce
    const encoded = encodeFusedBody({ ops, outputs: outputs.map((v) => reg.get(v.id)!) });
    const fused: Node = {
      op: !anchor ? FUSED_OP : isConv(anchor.op) ? FUSED_CONV_OPS[anchor.op] : FUSED_MATMUL_OP,
      // fused_matmul reads a and b, a fused convolution x and w, then the epilogue's inputs (its registers 1..)
      inputs: anchor ? [...anchor.inputs, ...inputs.slice(1)] : inputs,
      // a fused convolution keeps the convolution's attributes (stride, padding, ...) beside the body, a
      // fused matmul its transposes
      attrs: anchor ? { ...anchor.attrs, ...encoded } : encoded,
      outputs,
      // a matmul or convolution with its epilogue is the contraction's line (the bias add, the optimizer
      // update or the dropout after it is a small part of its time)
      span: anchor ? anchor.span : nodes[grp.id].span,
    };
    fusedAt.set(grp.id, fused);
    for (const m of members) inGroup[m] = 1;
    report.push({ op: fused.op, nodes: members, ops: members.map((m) => nodes[m].op), inputs: fused.inputs.length, outputs: outputs.length, constants });
  }
  if (fusedAt.size === 0 && rewritten.size === 0) return { graph: g, report: { nodesBefore: N, nodesAfter: N, groups: [], rejected, prologues, visited: visited + placed.visited } };

  // ---- contract each group to its fused node, and each matmul with a prologue but no epilogue to its
  // rewritten self; a folded transpose goes (its readers now depend on its operand); a constant stays
  // only while something outside the fused groups (or a graph result) reads it
  const contractions: Contraction[] = [...fusedAt].map(([id, node]) => ({ members: [...groups.get(id)!.members].sort((a, b) => a - b), node }));
  for (const [k, node] of rewritten) if (!inGroup[k]) contractions.push({ members: [k], node });
  const folded = new Set<number>();
  const dropped = new Set<number>(foldedTransposes);
  // a group member's read is folded unless its fused node binds the constant (a matmul's operand: an LSTM's zero state times W_h)
  const fusedNodeOf = new Map<number, Node>();
  for (const c of contractions) for (const m of c.members) fusedNodeOf.set(m, c.node);
  const binds = (c: number, id: number) => fusedNodeOf.get(c)?.inputs.some((w) => w.id === id) ?? false;
  // last to first, so a constant read only by dropped constants goes too
  for (let k = N - 1; k >= 0; k--) {
    if (!constant[k]) continue;
    folded.add(k);
    const v = nodes[k].outputs[0];
    if (!results.has(v.id) && !(consumers.get(v.id) ?? []).some((c) => (!inGroup[c] && !dropped.has(c)) || binds(c, v.id))) dropped.add(k);
  }
  const graph = contractGroups(g, contractions, { folded, dropped });
  return { graph, report: { nodesBefore: N, nodesAfter: graph.nodes.length, groups: report, rejected, prologues, visited: visited + placed.visited } };
}

/** The fused graph (see fuseWithReport). */
export function fuse(g: Graph, options: FuseOptions = {}): Graph {
  return fuseWithReport(g, options).graph;
}
