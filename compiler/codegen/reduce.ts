// Code generation for one reduction node (reduce_sum, reduce_max over any set of axes; argmax along one).
//
// One workgroup of 256 invocations computes one output element: invocation `lid` folds the reduced
// elements lid, lid + 256, ... into a register (an f32 sum with Kahan's compensation: a fold of
// thousands of elements would drop small addends), then the workgroup combines the 256 partial
// results by a tree in workgroup memory. The output element is the row-major index over the kept axes (keepdims
// only inserts size-1 axes, so the flat order is the same either way).
//
// The kept and reduced axes' sizes and input strides come from the uniform buffer: only which axes are
// reduced (so the ranks) is static, so a symbolic batch binds at run time. The grid is linear over the
// output elements and folds into a second dimension past 65,535 workgroups (`dispatchSize(n, 1)`); the
// bounds check is workgroup-uniform, so the barriers stay in uniform control flow.
//
// reduce_max on f32 starts from -inf (built from bits at run time: WGSL has no infinite constants) and
// propagates NaN like the interpreter; on i32 it starts from the smallest i32 (an empty i32 max is 0,
// the interpreter's wrapped -inf). argmax keeps the first index of the largest value, NaN counting as
// the largest (torch.argmax's rule, consistent with max returning NaN): each invocation scans its
// elements in increasing order taking only a strictly larger value or a first NaN, and the tree prefers
// NaN, then the larger value, then the smaller index on ties. With no value above -inf the answer is 0,
// like the interpreter.
//
// Bindings (group 0): 0 the uniform `Params`; 1 the input, `var<storage, read>`; 2 the output.
import type { DType, Node } from '../ir/types.ts';
import type { KernelPlan } from './kernel.ts';
import { add, type Dim, floorDiv, isConcrete, mul } from '../shapes/dim.ts';
import { bindShape, kernelStorageType, uvec } from './matmul.ts';

export const REDUCE_WORKGROUP_SIZE = 256;

export type ReduceKind = 'sum' | 'max' | 'argmax';

export interface ReduceKernel {
  readonly op: string;
  readonly wgsl: string;
  readonly entryPoint: 'main';
  readonly workgroupSize: number;
  readonly kind: ReduceKind;
  readonly inputs: readonly { readonly dtype: DType; readonly shape: readonly Dim[] }[];
  readonly output: { readonly dtype: DType; readonly shape: readonly Dim[] };
  /** The reduced input axes, sorted; the others are kept, in order. */
  readonly axes: readonly number[];
  readonly uniformBytes: number;
  /** One invocation per output element (else `lanes` invocations per output element). */
  readonly perThread: boolean;
  /** Invocations per output element: 1 per thread, else 256 (a workgroup each) or 32 (8 per workgroup). */
  readonly lanes: number;
}

/** Invocations per workgroup of the per-thread variant. */
export const PER_THREAD_WORKGROUP_SIZE = 64;
/** Outputs reducing at most this many elements (known at compile time) use the per-thread variant. */
export const PER_THREAD_MAX_REDUCED = 64;
/** So do reductions with at least this many outputs (known at compile time), whatever they reduce. */
export const PER_THREAD_MIN_OUTPUTS = 4096;

/** The f32 max of the reductions: NaN-propagating like the interpreter's max (WGSL's max need not be). */
export const MAX_F32_HELPER = `// NaN-propagating like the interpreter's max: WGSL's max need not be.
fn dlc_max_f32(a: f32, b: f32) -> f32 {
  if ((bitcast<u32>(a) & 0x7fffffffu) > 0x7f800000u) { return a; }
  if ((bitcast<u32>(b) & 0x7fffffffu) > 0x7f800000u) { return b; }
  return max(a, b);
}`;

/** NaN from the bits (a backend may fold `x != x` to false): argmax's test for the value it prefers. */
const IS_NAN_F32_HELPER = `fn dlc_is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}`;

/**
 * WGSL adding `v` to the running f32 sum `acc` with Kahan's compensation `comp` (a `var`, 0 at the
 * start): a sequential fold of thousands of elements keeps what each addition rounds away (alternating
 * 1 and 1.0001, a plain running sum past 2048 drops the 1e-4 altogether). An infinite or NaN sum leaves
 * the compensation at 0, so inf and NaN propagate as in a plain sum. `opaque` wraps the operands of
 * the compensation's subtractions where the kernel has a zero uniform word, so the backend cannot
 * simplify (t - acc) - y to 0.
 */
export function compensatedAdd(acc: string, comp: string, v: string, indent: string, opaque: (e: string) => string = (e) => e): string[] {
  return [
    `${indent}{`,
    `${indent}  let y = ${v} - ${comp};`,
    `${indent}  let t = ${acc} + y;`,
    `${indent}  ${comp} = select(0.0, (${opaque('t')} - ${acc}) - y, (bitcast<u32>(t) & 0x7fffffffu) < 0x7f800000u);`,
    `${indent}  ${acc} = t;`,
    `${indent}}`,
  ];
}

/** The builtins a subgroup variant's entry point adds to its parameters. */
export const SUBGROUP_BUILTINS = ',\n        @builtin(subgroup_invocation_id) sgi: u32, @builtin(subgroup_size) sgs: u32';

/**
 * WGSL that combines every invocation's `acc` across a workgroup of `wg` into `acc` in every invocation,
 * through `sv` (workgroup memory of `wg` elements), ending with a barrier so `sv` can be reused. The
 * tree halves the live values each step (log2(wg) barriers); with `subgroups` (sums only, the shader
 * enabling the extension) each subgroup adds its values with subgroupAdd and one lane writes the partial
 * sum, level by level until one is left: two levels at a subgroup size of 16 or more.
 */
export function workgroupCombine(acc: string, combine: (a: string, b: string) => string, wg: number, subgroups: boolean, lanes = wg): string[] {
  if (lanes < wg) {
    // several rows per workgroup: a tree over each row's lanes
    return [
      `  sv[lid] = ${acc};`,
      '  workgroupBarrier();',
      `  for (var s = ${lanes / 2}u; s > 0u; s = s >> 1u) {`,
      `    if (lane < s) { sv[lid] = ${combine('sv[lid]', 'sv[lid + s]')}; }`,
      '    workgroupBarrier();',
      '  }',
      `  ${acc} = sv[lid - lane];`,
      '  workgroupBarrier();',
    ];
  }
  if (!subgroups) {
    return [
      `  sv[lid] = ${acc};`,
      '  workgroupBarrier();',
      `  for (var s = ${wg / 2}u; s > 0u; s = s >> 1u) {`,
      `    if (lid < s) { sv[lid] = ${combine('sv[lid]', 'sv[lid + s]')}; }`,
      '    workgroupBarrier();',
      '  }',
      `  ${acc} = sv[0];`,
      '  workgroupBarrier();',
    ];
  }
  return [
    '  {',
    `    var live = ${wg}u;`,
    `    var part = ${acc};`,
    '    loop {',
    '      let total = subgroupAdd(part);',
    '      live = (live + sgs - 1u) / sgs;',
    '      workgroupBarrier();',
    '      if (sgi == 0u) { sv[lid / sgs] = total; }',
    '      workgroupBarrier();',
    '      if (live == 1u) { break; }',
    '      part = select(0.0, sv[lid], lid < live);',
    '    }',
    `    ${acc} = sv[0];`,
    '    workgroupBarrier();',
    '  }',
  ];
}

function normAxes(raw: readonly number[], rank: number): number[] {
  const axes = raw.map((a) => (a < 0 ? a + rank : a));
  if (axes.some((a) => !Number.isInteger(a) || a < 0 || a >= rank) || new Set(axes).size !== axes.length) {
    throw new Error(`reduction axes [${raw.join(', ')}] do not fit rank ${rank}`);
  }
  return axes.sort((p, q) => p - q);
}

/**
 * The reduction kernel of a node. `perThread` gives one invocation per output element that folds its
 * reduced elements sequentially (no workgroup memory, no barriers): the better choice when each
 * output reduces few elements (softmax over 10 classes), where a 256-wide tree would idle.
 */
export function lowerReduce(node: Node, options: { perThread?: boolean; subgroups?: boolean; lanes?: number } = {}): ReduceKernel {
  const kinds: Readonly<Record<string, ReduceKind>> = { reduce_sum: 'sum', reduce_max: 'max', argmax: 'argmax' };
  const kind: ReduceKind | undefined = kinds[node.op];
  if (!kind || node.inputs.length !== 1 || node.outputs.length !== 1) throw new Error(`${node.op} is not a reduction node`);
  const x = node.inputs[0].type;
  const out = node.outputs[0].type;
  const rank = x.shape.length;
  const axes = normAxes(kind === 'argmax' ? [node.attrs.axis as number] : (node.attrs.axes as number[]), rank);
  const kept = Array.from({ length: rank }, (_, i) => i).filter((i) => !axes.includes(i));
  const nk = kept.length;
  const nr = axes.length;
  const ty = kernelStorageType(x.dtype);
  const oty = kernelStorageType(out.dtype);
  const perThread = options.perThread ?? false;
  const wg = perThread ? PER_THREAD_WORKGROUP_SIZE : REDUCE_WORKGROUP_SIZE;
  const lanes = perThread ? 1 : (options.lanes ?? wg);
  // subgroup sums only (a row per workgroup): the tree keeps max's NaN rule and argmax's first-index rule
  const subgroups = (options.subgroups ?? false) && !perThread && lanes === wg && kind === 'sum' && ty === 'f32';
  const kk = Math.ceil(nk / 4);
  const kr = Math.ceil(nr / 4);

  const fields = ['  header: vec4<u32>, // output elements, reduced elements per output, 0 (the opaque operand of a compensated sum)'];
  if (nk > 0) fields.push(`  kshape: array<vec4<u32>, ${kk}>,`, `  kstride: array<vec4<u32>, ${kk}>,`);
  if (nr > 0) fields.push(`  rshape: array<vec4<u32>, ${kr}>,`, `  rstride: array<vec4<u32>, ${kr}>,`);
  const uniformWords = 4 + 8 * kk + 8 * kr;

  const zero = ty === 'f32' ? '0.0' : ty === 'i32' ? '0i' : '0u';
  let ident: string;
  let combine: (a: string, b: string) => string;
  const helpers: string[] = [];
  if (kind === 'sum') {
    ident = zero;
    combine = (a, b) => `${a} + ${b}`;
  } else if (ty === 'f32') {
    ident = 'bitcast<f32>(ninf_bits)';
    combine = (a, b) => `dlc_max_f32(${a}, ${b})`;
    if (kind === 'max') helpers.push(MAX_F32_HELPER);
    if (kind === 'argmax') helpers.push(IS_NAN_F32_HELPER);
  } else {
    ident = ty === 'i32' ? 'bitcast<i32>(0x80000000u)' : '0u';
    combine = (a, b) => `max(${a}, ${b})`;
  }

  const L: string[] = [];
  if (subgroups) L.push('enable subgroups;');
  L.push(
    perThread
      ? `// ${node.op}(${x.dtype}) rank ${rank} over axes [${axes.join(', ')}]: one invocation per output element, a sequential fold.`
      : `// ${node.op}(${x.dtype}) rank ${rank} over axes [${axes.join(', ')}]: ${lanes} invocations per output element (${wg / lanes} per workgroup of ${wg}), tree in workgroup memory.`,
  );
  L.push('struct Params {', ...fields, '}');
  L.push('@group(0) @binding(0) var<uniform> p: Params;');
  L.push(`@group(0) @binding(1) var<storage, read> x: array<${ty}>;`);
  L.push(`@group(0) @binding(2) var<storage, read_write> out: array<${oty}>;`);
  if (!perThread) {
    L.push(`var<workgroup> sv: array<${ty}, ${wg}>;`);
    if (kind === 'argmax') L.push(`var<workgroup> si: array<u32, ${wg}>;`);
  }
  L.push('', ...helpers.flatMap((h) => [h, '']));
  L.push(`@compute @workgroup_size(${wg})`);
  L.push('fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,');
  L.push(`        @builtin(local_invocation_index) lid: u32${subgroups ? SUBGROUP_BUILTINS : ''}) {`);
  L.push(...rowIndexLines(wg, lanes, perThread));
  L.push('  var base = 0u;');
  if (nk > 0) {
    L.push('  var orem = o;');
    for (let d = nk - 1; d >= 0; d--) {
      if (d > 0) {
        L.push(`  let k${d} = orem % ${uvec('kshape', d)};`);
        L.push(`  orem = orem / ${uvec('kshape', d)};`);
        L.push(`  base += k${d} * ${uvec('kstride', d)};`);
      } else L.push(`  base += orem * ${uvec('kstride', 0)};`);
    }
  }
  if (kind !== 'sum' && ty === 'f32') L.push('  var ninf_bits = 0xff800000u;');
  L.push(kind === 'argmax' && ty === 'f32' ? '  var acc = bitcast<f32>(ninf_bits);' : `  var acc = ${ident};`);
  if (kind === 'argmax') L.push('  var at = 0u;');
  const compensated = kind === 'sum' && ty === 'f32';
  if (compensated) L.push('  var comp = 0.0;');
  L.push(rowLoopHead(lanes, perThread));
  L.push('    var off = base;');
  if (nr > 0) {
    L.push('    var rrem = j;');
    for (let d = nr - 1; d >= 0; d--) {
      if (d > 0) {
        L.push(`    off += (rrem % ${uvec('rshape', d)}) * ${uvec('rstride', d)};`);
        L.push(`    rrem = rrem / ${uvec('rshape', d)};`);
      } else L.push(`    off += rrem * ${uvec('rstride', 0)};`);
    }
  }
  L.push('    let v = x[off];');
  if (kind === 'argmax') L.push(ty === 'f32' ? '    if (v > acc || (dlc_is_nan(v) && !dlc_is_nan(acc))) { acc = v; at = j; }' : '    if (v > acc) { acc = v; at = j; }');
  else if (compensated) L.push(...compensatedAdd('acc', 'comp', 'v', '    ', (e) => `bitcast<f32>(bitcast<u32>(${e}) ^ p.header.z)`));
  else L.push(`    acc = ${combine('acc', 'v')};`);
  L.push('  }');
  if (compensated) L.push('  acc = acc - comp;');
  if (perThread) {
    if (kind === 'argmax') L.push('  out[o] = i32(at);');
    else if (kind === 'max' && ty === 'i32') L.push('  out[o] = select(acc, 0i, p.header.y == 0u); // the interpreter wraps -inf to 0');
    else L.push('  out[o] = acc;');
    L.push('}', '');
    return { op: node.op, wgsl: L.join('\n'), entryPoint: 'main', workgroupSize: wg, kind, inputs: [{ dtype: x.dtype, shape: x.shape }], output: { dtype: out.dtype, shape: out.shape }, axes, uniformBytes: uniformWords * 4, perThread, lanes };
  }
  if (kind === 'argmax') {
    L.push('  sv[lid] = acc;', '  si[lid] = at;', '  workgroupBarrier();');
    L.push(`  for (var s = ${lanes / 2}u; s > 0u; s = s >> 1u) {`);
    L.push('    if (lane < s) {');
    L.push('      let v1 = sv[lid];');
    L.push('      let v2 = sv[lid + s];');
    L.push('      let i2 = si[lid + s];');
    if (ty === 'f32') {
      // NaN first (the smaller index of two), then the larger value, then the smaller index of a tie
      L.push('      let n1 = dlc_is_nan(v1);');
      L.push('      let n2 = dlc_is_nan(v2);');
      L.push('      if ((n2 && (!n1 || i2 < si[lid])) || (!n1 && !n2 && (v2 > v1 || (v2 == v1 && i2 < si[lid])))) { sv[lid] = v2; si[lid] = i2; }');
    } else L.push('      if (v2 > v1 || (v2 == v1 && i2 < si[lid])) { sv[lid] = v2; si[lid] = i2; }');
    L.push('    }');
    L.push('    workgroupBarrier();');
    L.push('  }');
  } else {
    L.push(...workgroupCombine('acc', combine, wg, subgroups, lanes));
  }
  L.push('  if (lane == 0u && has_row) {');
  if (kind === 'argmax') L.push('    out[o] = i32(si[lid - lane]);');
  else if (kind === 'max' && ty === 'i32') L.push('    out[o] = select(acc, 0i, p.header.y == 0u); // the interpreter wraps -inf to 0');
  else L.push('    out[o] = acc;');
  L.push('  }');
  L.push('}', '');

  return {
    op: node.op,
    wgsl: L.join('\n'),
    entryPoint: 'main',
    workgroupSize: wg,
    kind,
    inputs: [{ dtype: x.dtype, shape: x.shape }],
    output: { dtype: out.dtype, shape: out.shape },
    axes,
    uniformBytes: uniformWords * 4,
    perThread,
    lanes,
  };
}

/**
 * The uniform words as sizes: output count and reduced count, then the kept axes' sizes and input
 * strides, then the reduced axes' sizes and strides. One workgroup per output element (word 0).
 */
export function reduceUniformDims(kernel: ReduceKernel): Dim[] {
  const inShape = kernel.inputs[0].shape;
  const rank = inShape.length;
  const str = new Array<Dim>(rank);
  let acc: Dim = 1;
  for (let d = rank - 1; d >= 0; d--) {
    str[d] = acc;
    acc = mul(acc, inShape[d]);
  }
  const kept = inShape.map((_, i) => i).filter((i) => !kernel.axes.includes(i));
  const numOut = kept.reduce<Dim>((n, i) => mul(n, inShape[i]), 1);
  const numRed = kernel.axes.reduce<Dim>((n, i) => mul(n, inShape[i]), 1);
  const kk = Math.ceil(kept.length / 4);
  const kr = Math.ceil(kernel.axes.length / 4);
  const words: Dim[] = new Array<Dim>(kernel.uniformBytes / 4).fill(0);
  words[0] = numOut;
  words[1] = numRed;
  kept.forEach((a, d) => {
    words[4 + d] = inShape[a];
    words[4 + 4 * kk + d] = str[a];
  });
  kernel.axes.forEach((a, d) => {
    words[4 + 8 * kk + d] = inShape[a];
    words[4 + 8 * kk + 4 * kr + d] = str[a];
  });
  return words;
}

/**
 * The uniform buffer once the symbolic sizes are bound, the number of workgroups (one per output
 * element, or per 64 with `perThread`; to be folded by `dispatchSize(workgroups, 1)`), and the concrete shapes.
 */
export function reduceUniforms(
  kernel: ReduceKernel,
  sizes: ReadonlyMap<string, number>,
): { data: Uint32Array<ArrayBuffer>; workgroups: number; outShape: number[]; inShapes: number[][] } {
  const inShape = bindShape(kernel.inputs[0].shape, sizes);
  const outShape = bindShape(kernel.output.shape, sizes);
  if (inShape.reduce((a, b) => a * b, 1) > 0xffffffff) throw new Error(`${kernel.op}: the input does not fit a u32 index`);
  const words = bindShape(reduceUniformDims(kernel), sizes);
  const workgroups = kernel.perThread ? Math.ceil(words[0] / PER_THREAD_WORKGROUP_SIZE) : Math.ceil(words[0] / (REDUCE_WORKGROUP_SIZE / kernel.lanes));
  return { data: Uint32Array.from(words), workgroups, outShape, inShapes: [inShape] };
}

/** Invocations per row when a symbolic row length might be short: a row per 32 lanes, 8 rows per workgroup. */
export const ROW_GROUP_LANES = 32;

/** Rows longer than this (known at compile time) take a whole workgroup each. */
export const LONG_ROW = 2048;

/**
 * Invocations that fold one output element together, for a workgroup-per-row reduction (not per
 * thread): all 256 of a workgroup when the row is long (known, over LONG_ROW elements) or there are
 * few rows (known, under 64); else 32, with 8 rows per workgroup. Rows of a few hundred elements (a
 * softmax over a vocabulary of 65, a layer norm over 256 features) or of a length known only at run
 * time (the sequence length L of an attention softmax) would leave most of 256 invocations idle, and
 * their tree would take 8 barriers instead of 5.
 */
export function rowLanes(outputs: Dim, reduced: Dim): number {
  return (isConcrete(reduced) && reduced > LONG_ROW) || (isConcrete(outputs) && outputs < 64) ? REDUCE_WORKGROUP_SIZE : ROW_GROUP_LANES;
}

/**
 * The first lines of a reduction's main: the output element (row) `o` of this invocation and whether
 * it has one. `perThread`: one per invocation; `lanes` = the workgroup size: one per workgroup; fewer
 * lanes: `wg / lanes` rows per workgroup, `lane` the invocation's index in its row, `has_row` whether
 * its row exists (`o` is clamped to a valid row so loads stay in bounds; stores check `has_row`; no
 * invocation returns early, so the barriers stay in uniform control flow).
 */
export function rowIndexLines(wg: number, lanes: number, perThread: boolean): string[] {
  if (perThread) return [`  let o = (wid.y * nwg.x + wid.x) * ${wg}u + lid;`, '  if (o >= p.header.x) { return; }'];
  if (lanes === wg) return ['  let o = wid.y * nwg.x + wid.x;', '  if (o >= p.header.x) { return; }', '  let lane = lid;', '  let has_row = true;'];
  return [
    `  let row = (wid.y * nwg.x + wid.x) * ${wg / lanes}u + lid / ${lanes}u;`,
    '  let has_row = row < p.header.x;',
    '  let o = min(row, p.header.x - 1u);',
    `  let lane = lid % ${lanes}u;`,
  ];
}

/** The fold loop's header over a row's elements `j`: all of them per thread, else strided by the lanes. */
export function rowLoopHead(lanes: number, perThread: boolean): string {
  if (perThread) return '  for (var j = 0u; j < p.header.y; j++) {';
  return lanes === REDUCE_WORKGROUP_SIZE ? `  for (var j = lid; j < p.header.y; j += ${lanes}u) {` : `  for (var j = lane; has_row && j < p.header.y; j += ${lanes}u) {`;
}

/**
 * Whether a reduction folds each output in one invocation: when each output folds few elements, or
 * when there are so many outputs that one thread each already fills the device (a weight gradient
 * summed over the batch: [B, 256, 64] -> [256, 64]). fused_reduce makes the same choice, so its sums
 * add in the same order as the unfused kernels'.
 */
export function prefersPerThread(outputs: Dim, reduced: Dim): boolean {
  return (isConcrete(reduced) && reduced <= PER_THREAD_MAX_REDUCED) || (isConcrete(outputs) && outputs >= PER_THREAD_MIN_OUTPUTS);
}

/**
 * On CPU adapters (lavapipe, SwiftShader) a reduction with at least this many outputs folds each in one
 * invocation, whatever its length: a CPU runs a workgroup's invocations as SIMD lanes, so rows side by
 * side fill them, while a tree of 32 or 256 lanes per row pays a barrier per level, which a CPU driver
 * runs by switching between the lanes' contexts. On lavapipe the Transformer step's reductions went from
 * 23 ms to 4 ms of kernel time (attention softmax rows of 32, layer norm rows of 64, sums over the batch).
 */
export const CPU_PER_THREAD_MIN_OUTPUTS = 64;

/**
 * Where a reduction's CPU variant is the per-thread fold: the size that must be positive at run time
 * (outputs - 63), or undefined where the kernel is per-thread already or has too few outputs. The
 * reduction and the fused_reduce holding it decide alike, so they add in the same order on CPUs too.
 */
export function cpuPerThreadRequires(perThread: boolean, outputs: Dim): Dim | undefined {
  if (perThread || (isConcrete(outputs) && outputs < CPU_PER_THREAD_MIN_OUTPUTS)) return undefined;
  return add(outputs, 1 - CPU_PER_THREAD_MIN_OUTPUTS);
}

/** The registry's lowering: one dispatch, a workgroup per output element (a per-thread fold as the CPU variant where it pays). */
export function reducePlans(node: Node): KernelPlan[] {
  const probe = lowerReduce(node);
  const [outputs, reduced] = reduceUniformDims(probe);
  const perThread = prefersPerThread(outputs, reduced);
  const lanes = perThread ? 1 : rowLanes(outputs, reduced);
  const k = perThread || lanes !== REDUCE_WORKGROUP_SIZE ? lowerReduce(node, { perThread, lanes }) : probe;
  const words = reduceUniformDims(k);
  const sub = perThread ? undefined : lowerReduce(node, { subgroups: true, lanes });
  const subgroupWgsl = sub && sub.wgsl !== k.wgsl ? { subgroupWgsl: sub.wgsl } : {};
  const perGroup = perThread ? PER_THREAD_WORKGROUP_SIZE : REDUCE_WORKGROUP_SIZE / lanes;
  const requires = cpuPerThreadRequires(perThread, outputs);
  const cpu = requires === undefined ? undefined : lowerReduce(node, { perThread: true, lanes: 1 });
  if (cpu && JSON.stringify(reduceUniformDims(cpu)) !== JSON.stringify(words)) throw new Error(`${node.op}: the per-thread variant's uniforms differ`);
  const cpuVariants = cpu ? { cpuVariants: [{ name: 'per-thread', wgsl: cpu.wgsl, workgroups: floorDiv(add(words[0], PER_THREAD_WORKGROUP_SIZE - 1), PER_THREAD_WORKGROUP_SIZE), requires: requires! }] } : {};
  return [{ op: node.op, wgsl: k.wgsl, uniforms: words, workgroups: perGroup === 1 ? words[0] : floorDiv(add(words[0], perGroup - 1), perGroup), ...subgroupWgsl, ...cpuVariants }];
}
