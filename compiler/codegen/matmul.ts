// Code generation for one matmul node: a tiled, batched [..., m, k] @ [..., k, n] WGSL compute shader.
//
// The tiled kernel (for GPUs) follows the well-known register-blocked WebGPU matmuls (TF.js's
// matmul_packed): a workgroup of 8x8 invocations computes a 32x32 output tile, each invocation a 4x4
// block of it (rows 4 * ty .. + 3, columns 4 * tx .. + 3) held in four vec4 accumulators. The k axis is
// walked in steps of 32: the workgroup stages a 32x32 tile of A and one of B in workgroup memory as vec4s
// (8 KiB, within WebGPU's default 16 KiB and 256 invocations), zero-filled past the edges, so any m, n,
// k works; each invocation then reads one vec4 of A (4 k) per row and four vec4s of B (4 k rows of its 4
// columns) for 64 fmas. Global reads are vec4s where the static shapes allow (`matmulVectorAccess`: k a
// multiple of 4 for A, n for B and the output), otherwise four bounds-checked scalars. Every output
// element accumulates with one fma per k in increasing k, as the blocked CPU variant does, and a fused
// epilogue (codegen/fused-matmul.ts) keeps the kernel's loop, so fused and unfused results are the same bits.
//
// m, n, k, the batch shape and each operand's batch strides (in matrices, 0 along broadcast axes) come
// from the uniform buffer: only the batch rank is static, so a symbolic batch B binds at run time. The
// workgroup grid is linear over (batch, tile row, tile column) and folds into a second dimension past
// 65,535 workgroups (`dispatchSize(tiles, 1)`); the bounds check on the tile index is workgroup-uniform,
// so the barriers stay in uniform control flow.
//
// Transposed operands (the `transpose_a` / `transpose_b` attributes, set when fusion folds a transpose of
// the last two axes into the matmul, optimize/fuse.ts): A is then stored [..., k, m], B [..., n, k]. The
// tiled kernel reads a transposed operand along its contiguous axis (4 rows of the tile per vec4 load of A^T,
// 4 k of B^T) and scatters the lanes into the same workgroup tiles, so the inner loop, and with it every
// element's order of fmas, is the plain kernel's; the blocked kernel just indexes storage differently.
//
// Bindings (group 0): 0 the uniform `Params`; 1 A and 2 B, `var<storage, read>`; 3 the output.
import type { DType, Node } from '../ir/types.ts';
import type { KernelPlan, WidePlan } from './kernel.ts';
import { lowerWideMatmul, WIDE_TIERS, wideWorkgroups } from './matmul-wide.ts';
import { lowerSplitMatmul, SPLIT_MAX_TILES } from './matmul-split.ts';
import { lowerRowsMatmuls } from './matmul-rows.ts';
import { add, type Dim, dimEquals, evaluate, floorDiv, isConcrete, mul } from '../shapes/dim.ts';

export const MATMUL_TILE = 32;
/** Rows of the blocked CPU kernel's block per invocation (by 8 columns, interleaved by 4): 16 invocations per 32x32 tile. */
const BLOCKED_ROWS = 8;
/** The k step of the tiled kernel: a 32x32 tile of A and of B in workgroup memory (8 KiB). */
export const MATMUL_TILE_K = 32;

export interface MatmulKernel {
  readonly op: 'matmul';
  readonly wgsl: string;
  readonly entryPoint: 'main';
  /** Invocations per workgroup (8 x 8 tiled, 64 blocked). */
  readonly workgroupSize: number;
  readonly inputs: readonly { readonly dtype: DType; readonly shape: readonly Dim[] }[];
  readonly output: { readonly dtype: DType; readonly shape: readonly Dim[] };
  /** Rank of the broadcast batch shape (output rank - 2). */
  readonly batchRank: number;
  /** A stored [..., k, m] and B stored [..., n, k] (the node's `transpose_a` / `transpose_b`). */
  readonly transposeA: boolean;
  readonly transposeB: boolean;
  readonly uniformBytes: number;
}

const LANES = ['x', 'y', 'z', 'w'];
/** `p.arr[k].lane` for element `i` of a uniform `array<vec4<u32>, K>`. */
export const uvec = (arr: string, i: number): string => `p.${arr}[${i >> 2}].${LANES[i & 3]}`;

/** The batch part of a matmul kernel's uniform struct (after `dims` and `tiles`): the batch shape and each operand's batch strides. */
export function matmulBatchFields(batchRank: number): string[] {
  const k4 = Math.max(1, Math.ceil(batchRank / 4));
  return batchRank > 0 ? [`  bshape: array<vec4<u32>, ${k4}>,`, `  astride: array<vec4<u32>, ${k4}>,`, `  bstride: array<vec4<u32>, ${k4}>,`] : [];
}

/**
 * WGSL lines that unravel the batch index `bi` into `i0..` (through `bshape`) and give each operand's
 * matrix offset, `aBase`, `bBase` and the output's `oBase` (m, n, k and bi in scope).
 */
export function matmulBatchBases(batchRank: number): string[] {
  const L = ['  var am = 0u;', '  var bm = 0u;'];
  if (batchRank > 0) {
    L.push('  var rem = bi;');
    for (let d = batchRank - 1; d >= 0; d--) {
      if (d > 0) L.push(`  let i${d} = rem % ${uvec('bshape', d)};`, `  rem = rem / ${uvec('bshape', d)};`);
      else L.push('  let i0 = rem;');
      L.push(`  am += i${d} * ${uvec('astride', d)};`, `  bm += i${d} * ${uvec('bstride', d)};`);
    }
  }
  L.push('  let aBase = am * m * k;', '  let bBase = bm * k * n;', '  let oBase = bi * m * n;');
  return L;
}

/**
 * WGSL lines that set `target` to one vec4 of an operand as stored: element (row, col .. col + 3) of a
 * matrix at `base` with `cols` columns, a vec4 read (`vector`) or four bounds-checked scalars, zeros past
 * the edges. With `declare` the lines declare `target` as a var first.
 */
export function vec4Load(target: string, buf: string, base: string, row: string, rows: string, col: string, cols: string, vector: boolean, indent: string, declare: boolean): string[] {
  const L = [`${indent}${declare ? 'var ' : ''}${target} = vec4<f32>(0.0);`];
  if (vector) {
    L.push(`${indent}if (${row} < ${rows} && ${col} < ${cols}) { ${target} = ${buf}[(${base} + ${row} * ${cols} + ${col}) / 4u]; }`);
  } else {
    L.push(`${indent}if (${row} < ${rows}) {`, `${indent}  let o = ${base} + ${row} * ${cols} + ${col};`);
    for (let j = 0; j < 4; j++) L.push(`${indent}  if (${col}${j > 0 ? ` + ${j}u` : ''} < ${cols}) { ${target}.${LANES[j]} = ${buf}[o${j > 0 ? ` + ${j}u` : ''}]; }`);
    L.push(`${indent}}`);
  }
  return L;
}

/** A symbolic shape with its sizes bound (kernel generators import nothing from ops/, which imports them). */
export function bindShape(shape: readonly Dim[], sizes: ReadonlyMap<string, number>): number[] {
  return shape.map((d) => {
    const v = isConcrete(d) ? d : evaluate(d, sizes);
    if (!Number.isInteger(v) || v < 0) throw new Error(`size ${String(v)} is not a non-negative integer`);
    return v;
  });
}

/** The WGSL storage type of a dtype the kernels handle (bool as u32). */
export function kernelStorageType(d: DType): 'f32' | 'i32' | 'u32' {
  if (d === 'f32' || d === 'i32' || d === 'u32') return d;
  if (d === 'bool') return 'u32';
  throw new Error(`${d} is not lowered yet`);
}

/**
 * An epilogue applied to each output element at store time instead of the plain store (fused_matmul,
 * codegen/fused-matmul.ts): more uniform fields after the matmul's, the bindings after a and b, lines
 * run once per invocation after the batch index is unravelled (the batch indices `i{d}` are in scope),
 * and a function `call(index, row, column, value)` that computes and stores the outputs.
 */
export interface MatmulEpilogue {
  readonly comment: string;
  readonly fields: readonly string[];
  readonly declarations: readonly string[];
  readonly prologue: readonly string[];
  readonly call: string;
  readonly functions: readonly string[];
}

/**
 * The matmul-family attributes `transpose_a` (A is stored [..., k, m] and read as its transpose) and
 * `transpose_b` (B stored [..., n, k]); absent means false, so a user's plain matmul keeps its meaning.
 * The shape rule and interpreter (ops/matmul.ts, ops/fused-matmul.ts) and the kernels read them here.
 */
export function matmulTransposes(attrs: Readonly<Record<string, unknown>>): { readonly a: boolean; readonly b: boolean } {
  return { a: attrs.transpose_a === true, b: attrs.transpose_b === true };
}

/** m, k, n of a matmul node's operands, through its transposes. */
export function matmulDims(node: Node): { readonly m: Dim; readonly k: Dim; readonly n: Dim } {
  const [a, b] = node.inputs.map((v) => v.type.shape);
  const t = matmulTransposes(node.attrs);
  const [a0, a1] = a.slice(a.length - 2);
  const [b0, b1] = b.slice(b.length - 2);
  return { m: t.a ? a1 : a0, k: t.a ? a0 : a1, n: t.b ? b0 : b1 };
}

/**
 * Where the tiled kernel reads and writes vec4s: A when k is a known multiple of 4 (each row then starts
 * at a multiple of 4, and so does every batch matrix), B when n is (likewise) and k is known, and the
 * plain matmul's output with B. Sizes are judged on the node's static shapes (a symbolic batch or m does
 * not matter: where they are 0 nothing is dispatched); a symbolic k or n gives scalar loads (each lane
 * bounds-checked), so every shape still works. B needs a concrete k because a symbolic one (a weight
 * gradient summed over the batch) may be 0 at run time while the kernel still runs (to write zeros), and
 * an empty buffer cannot back an array<vec4<f32>> binding (16 bytes at least). A transposed operand is
 * read along its own last axis: A^T ([k, m]) when m is a known multiple of 4 and k is known, B^T ([n, k])
 * when k is a known multiple of 4.
 */
export function matmulVectorAccess(node: Node): { readonly a: boolean; readonly b: boolean } {
  const t = matmulTransposes(node.attrs);
  const { m, k, n } = matmulDims(node);
  const kKnown = isConcrete(k) && k > 0;
  return { a: t.a ? by4(m) && kKnown : by4(k), b: t.b ? by4(k) : by4(n) && kKnown };
}

/** A size known to be a positive multiple of 4. */
const by4 = (d: Dim) => isConcrete(d) && d > 0 && d % 4 === 0;

/**
 * The matmul kernel of a node. The default ('tiled') stages tiles in workgroup memory, for GPUs.
 * 'blocked' keeps the same grid of 32x32 output tiles, uniforms and bindings, but each of 16
 * invocations computes 8 rows by 8 columns straight from storage, with no workgroup memory or barriers:
 * on CPU adapters (lavapipe, SwiftShader) barriers are costly and caches do the staging, and lavapipe
 * reads storage lane by lane, so reads per fma count (16 per 64 here; 4x4 blocks read 8 per 16: the
 * Transformer's B-transposed products on lavapipe 1.8-2.2 -> 1.2-1.7 ms, the MLP's n = 10 ones 7-8 ->
 * 4 ms). Its columns are interleaved by 4 (c, c + 4, ..., c + 28), so the invocations a CPU runs as one
 * SIMD vector read neighbouring elements of B, and its accumulators are named registers, never indexed
 * at run time. On CPU adapters with 8-lane subgroups the subgroup rows kernels (codegen/matmul-rows.ts) run instead;
 * without subgroups, where B is read along n in vec4s, the plain rows kernel does.
 */
export function lowerMatmul(node: Node, options: { variant?: 'tiled' | 'blocked'; epilogue?: MatmulEpilogue } = {}): MatmulKernel {
  if (node.op !== 'matmul' || node.inputs.length !== 2 || node.outputs.length !== 1) throw new Error(`${node.op} is not a matmul node`);
  const [a, b] = node.inputs.map((v) => v.type);
  const out = node.outputs[0].type;
  if (a.dtype !== 'f32' || b.dtype !== 'f32') throw new Error(`matmul is lowered for f32 only, found ${a.dtype} @ ${b.dtype}`);
  const batchRank = out.shape.length - 2;
  const k4 = Math.max(1, Math.ceil(batchRank / 4));
  const T = MATMUL_TILE;
  const TK = MATMUL_TILE_K;
  const ty = kernelStorageType(out.dtype);
  const tiled = options.variant !== 'blocked';
  const access = matmulVectorAccess(node);
  const tr = matmulTransposes(node.attrs);
  // the vec4 bindings (tiled only; the plain output only, an epilogue stores element by element)
  // the output as vec4s where n is a known multiple of 4 and k is known (B's rule when it is not transposed)
  const { k: kDim, n: nDim } = matmulDims(node);
  const vecOut = by4(nDim) && isConcrete(kDim) && kDim > 0;
  const vec = { a: tiled && access.a, b: tiled && access.b, out: tiled && vecOut && !options.epilogue };

  const fields = ['  dims: vec4<u32>, // m, n, k, batch count', '  tiles: vec4<u32>, // tile columns, tile rows, total tiles'];
  fields.push(...matmulBatchFields(batchRank));
  const uniformWords = 8 + (batchRank > 0 ? 12 * k4 : 0);

  const L: string[] = [];
  const transposed = tr.a || tr.b ? ` (${[tr.a ? 'A stored [k, m]' : '', tr.b ? 'B stored [n, k]' : ''].filter((x) => x).join(', ')}: read transposed)` : '';
  if (options.variant === 'blocked') {
    L.push(`// matmul(f32) batch rank ${batchRank}: ${T}x${T} output tiles, an ${BLOCKED_ROWS}x8 block per invocation read straight from storage (no barriers)${transposed}.`);
  } else {
    const loads = vec.a || vec.b ? `, vec4 loads of ${[vec.a ? 'A' : '', vec.b ? 'B' : ''].filter((x) => x).join(' and ')}` : '';
    L.push(`// matmul(f32) batch rank ${batchRank}: ${T}x${T} output tiles, k steps of ${TK} through workgroup memory, a 4x4 register block per invocation${loads}${transposed}.`);
  }
  const epi = options.epilogue;
  if (epi) L.push(epi.comment);
  L.push('struct Params {', ...fields, ...(epi?.fields ?? []), '}');
  L.push('@group(0) @binding(0) var<uniform> p: Params;');
  L.push(`@group(0) @binding(1) var<storage, read> a: array<${vec.a ? 'vec4<f32>' : ty}>;`);
  L.push(`@group(0) @binding(2) var<storage, read> b: array<${vec.b ? 'vec4<f32>' : ty}>;`);
  if (epi) L.push(...epi.declarations);
  else L.push(`@group(0) @binding(3) var<storage, read_write> out: array<${vec.out ? 'vec4<f32>' : ty}>;`);
  if (tiled) {
    L.push(`var<workgroup> tileA: array<vec4<f32>, ${(T * TK) / 4}>; // [${T} rows][${TK / 4} vec4s along k]`);
    L.push(`var<workgroup> tileB: array<vec4<f32>, ${(TK * T) / 4}>; // [${TK} k][${T / 4} vec4s along n]`);
  }
  L.push('');
  L.push(tiled ? '@compute @workgroup_size(8, 8)' : `@compute @workgroup_size(${(T / BLOCKED_ROWS) * 4})`);
  L.push('fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,');
  L.push('        @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {');
  L.push('  let t = wid.y * nwg.x + wid.x;');
  L.push('  if (t >= p.tiles.z) { return; }');
  L.push('  let m = p.dims.x;');
  L.push('  let n = p.dims.y;');
  L.push('  let k = p.dims.z;');
  L.push('  let col0 = (t % p.tiles.x) * ' + `${T}u;`);
  L.push('  let rest = t / p.tiles.x;');
  L.push(`  let row0 = (rest % p.tiles.y) * ${T}u;`);
  L.push('  let bi = rest / p.tiles.y;');
  L.push(...matmulBatchBases(batchRank));
  if (epi) L.push(...epi.prologue);
  // the store of one output element: the plain store, or the epilogue
  const store = (r: string, c: string, v: string) => {
    const rp = r.includes(' ') ? `(${r})` : r;
    return epi ? `${epi.call}(oBase + ${rp} * n + ${c}, ${r}, ${c}, ${v});` : `out[oBase + ${rp} * n + ${c}] = ${v};`;
  };
  if (!tiled) {
    // 16 invocations, each an 8x8 block: rows r0 .. r0 + 7, columns c0 + 4j interleaved by 4 (the
    // invocations a CPU runs as one SIMD vector read neighbouring B elements); 16 reads per 64 fmas
    const BR = BLOCKED_ROWS;
    L.push(`  let r0 = row0 + (li / 4u) * ${BR}u;`);
    L.push('  let c0 = col0 + li % 4u;');
    // named accumulators, never indexed at run time, so a CPU compiler keeps them in registers
    for (let i = 0; i < BR; i++) for (let h = 0; h < 2; h++) L.push(`  var acc${i}_${h} = vec4<f32>(0.0);`);
    L.push('  let rl = max(m, 1u) - 1u;');
    L.push('  let cl = max(n, 1u) - 1u;');
    // each row's and column's start in storage; q steps along k by 1 (A, B^T) or by a row (A^T: m, B: n)
    for (let i = 0; i < BR; i++) L.push(`  let ra${i} = min(r0 + ${i}u, rl)${tr.a ? '' : ' * k'} + aBase;`);
    for (let j = 0; j < 8; j++) L.push(`  let cb${j} = min(c0 + ${4 * j}u, cl)${tr.b ? ' * k' : ''} + bBase;`);
    L.push('  for (var q = 0u; q < k; q++) {');
    L.push(`    let qa = ${tr.a ? 'q * m' : 'q'};`);
    L.push(`    let qb = ${tr.b ? 'q' : 'q * n'};`);
    for (let h = 0; h < 2; h++) L.push(`    let bv${h} = vec4<f32>(${[0, 1, 2, 3].map((j) => `b[cb${4 * h + j} + qb]`).join(', ')});`);
    for (let i = 0; i < BR; i++) {
      L.push(`    let av${i} = vec4<f32>(a[ra${i} + qa]);`);
      for (let h = 0; h < 2; h++) L.push(`    acc${i}_${h} = fma(av${i}, bv${h}, acc${i}_${h});`);
    }
    L.push('  }');
    for (let i = 0; i < BR; i++) {
      L.push(`  if (r0 + ${i}u < m) {`);
      for (let j = 0; j < 8; j++) L.push(`    if (c0 + ${4 * j}u < n) { ${store(`r0 + ${i}u`, `c0 + ${4 * j}u`, `acc${i}_${j >> 2}.${LANES[j & 3]}`)} }`);
      L.push('  }');
    }
  } else {
    // 8x8 invocations, each a 4x4 block of C: rows row0 + 4 * lid.y + i, columns col0 + 4 * lid.x + j
    const R = T / 4; // vec4s per row of either tile
    const acc = [0, 1, 2, 3].map((i) => `acc${i}`);
    for (const x of acc) L.push(`  var ${x} = vec4<f32>(0.0);`);
    L.push(`  let steps = (k + ${TK - 1}u) / ${TK}u;`);
    L.push('  for (var s = 0u; s < steps; s++) {');
    L.push(`    let k0 = s * ${TK}u;`);
    L.push(`    for (var l = 0u; l < ${(T * TK) / 4 / 64}u; l++) {`);
    L.push('      let e = li + l * 64u;');
    /**
     * One vec4 from storage: `row` / `col` its row and first column in the operand as stored, `rows` /
     * `cols` the bounds, `stride` the row length; a vec4 read, or four bounds-checked scalars.
     */
    const load = (name: string, buf: string, base: string, row: string, rows: string, col: string, cols: string, vector: boolean) => {
      L.push(...vec4Load(name, buf, base, row, rows, col, cols, vector, '      ', true));
    };
    if (!tr.a) {
      // A: row e / R of the tile, its k columns 4 * (e % R) .. + 3
      L.push(`      let ar = row0 + e / ${R}u;`);
      L.push(`      let ac = k0 + (e % ${R}u) * 4u;`);
      load('va', 'a', 'aBase', 'ar', 'm', 'ac', 'k', vec.a);
      L.push('      tileA[e] = va;');
    } else {
      // A^T (stored [k, m]): k row e / R of the tile, its rows 4 * (e % R) .. + 3, one lane each of four
      // tileA vec4s (rows 4 * (e % R) + j, the vec4 of k (e / R) / 4, lane (e / R) % 4)
      L.push(`      let ak = e / ${R}u;`);
      L.push(`      let ar = row0 + (e % ${R}u) * 4u;`);
      L.push('      let akg = k0 + ak;');
      load('va', 'a', 'aBase', 'akg', 'k', 'ar', 'm', vec.a);
      L.push(`      let ta = (e % ${R}u) * ${4 * (TK / 4)}u + ak / 4u;`);
      L.push('      let tl = ak % 4u;');
      for (let j = 0; j < 4; j++) L.push(`      tileA[ta${j > 0 ? ` + ${j * (TK / 4)}u` : ''}][tl] = va.${LANES[j]};`);
    }
    if (!tr.b) {
      // B: k row e / R of the tile, its columns 4 * (e % R) .. + 3
      L.push(`      let br = k0 + e / ${R}u;`);
      L.push(`      let bc = col0 + (e % ${R}u) * 4u;`);
      load('vb', 'b', 'bBase', 'br', 'k', 'bc', 'n', vec.b);
      L.push('      tileB[e] = vb;');
    } else {
      // B^T (stored [n, k]): column e / R of the tile, its k 4 * (e % R) .. + 3, one lane each of four
      // tileB vec4s (k rows 4 * (e % R) + j, the vec4 of columns (e / R) / 4, lane (e / R) % 4)
      L.push(`      let bn = e / ${R}u;`);
      L.push(`      let bk = k0 + (e % ${R}u) * 4u;`);
      L.push('      let bng = col0 + bn;');
      load('vb', 'b', 'bBase', 'bng', 'n', 'bk', 'k', vec.b);
      L.push(`      let tb = (e % ${R}u) * ${4 * R}u + bn / 4u;`);
      L.push('      let tbl = bn % 4u;');
      for (let j = 0; j < 4; j++) L.push(`      tileB[tb${j > 0 ? ` + ${j * R}u` : ''}][tbl] = vb.${LANES[j]};`);
    }
    L.push('    }');
    L.push('    workgroupBarrier();');
    // four k at a time: one vec4 of A per row (4 k), four vec4s of B (4 k rows, this block's 4 columns)
    L.push(`    for (var q = 0u; q < ${TK / 4}u; q++) {`);
    for (let j = 0; j < 4; j++) L.push(`      let b${j} = tileB[(q * 4u${j > 0 ? ` + ${j}u` : ''}) * ${R}u + lid.x];`);
    for (let i = 0; i < 4; i++) {
      L.push(`      let a${i} = tileA[(lid.y * 4u${i > 0 ? ` + ${i}u` : ''}) * ${R}u + q];`);
      for (let j = 0; j < 4; j++) L.push(`      ${acc[i]} = fma(vec4<f32>(a${i}.${LANES[j]}), b${j}, ${acc[i]});`);
    }
    L.push('    }');
    L.push('    workgroupBarrier();');
    L.push('  }');
    L.push('  let r0 = row0 + lid.y * 4u;');
    L.push('  let c0 = col0 + lid.x * 4u;');
    for (let i = 0; i < 4; i++) {
      const r = i === 0 ? 'r0' : `r0 + ${i}u`;
      if (vec.out) {
        L.push(`  if (${r} < m && c0 < n) { out[(oBase + ${i === 0 ? r : `(${r})`} * n + c0) / 4u] = ${acc[i]}; }`);
      } else {
        L.push(`  if (${r} < m) {`);
        for (let j = 0; j < 4; j++) {
          const c = j === 0 ? 'c0' : `c0 + ${j}u`;
          L.push(`    if (${c} < n) { ${store(r, c, `${acc[i]}.${LANES[j]}`)} }`);
        }
        L.push('  }');
      }
    }
  }
  L.push('}', '');
  if (epi) L.push(...epi.functions);

  return {
    op: 'matmul',
    wgsl: L.join('\n'),
    entryPoint: 'main',
    workgroupSize: 64,
    inputs: [a, b].map((x) => ({ dtype: x.dtype, shape: x.shape })),
    output: { dtype: out.dtype, shape: out.shape },
    batchRank,
    transposeA: tr.a,
    transposeB: tr.b,
    uniformBytes: uniformWords * 4,
  };
}

/**
 * The uniform words as sizes: m, n, k, the batch count, tile columns, tile rows and total tiles, then
 * the batch shape and each operand's batch strides in matrices (0 along broadcast axes). The number
 * of workgroups is the total tile count (word 6).
 */
export function matmulUniformDims(kernel: MatmulKernel): Dim[] {
  const out = kernel.output.shape;
  const r = out.length;
  const [m, n] = out.slice(r - 2);
  const a = kernel.inputs[0].shape;
  const k = a[a.length - (kernel.transposeA ? 2 : 1)];
  const batch = out.slice(0, r - 2);
  const count = batch.reduce<Dim>((x, y) => mul(x, y), 1);
  const tilesN = floorDiv(add(n, MATMUL_TILE - 1), MATMUL_TILE);
  const tilesM = floorDiv(add(m, MATMUL_TILE - 1), MATMUL_TILE);
  const words: Dim[] = new Array<Dim>(kernel.uniformBytes / 4).fill(0);
  [m, n, k, count, tilesN, tilesM, mul(count, mul(tilesM, tilesN)), 0].forEach((d, i) => (words[i] = d));
  if (kernel.batchRank > 0) {
    const k4 = Math.max(1, Math.ceil(kernel.batchRank / 4));
    batch.forEach((d, i) => (words[8 + i] = d));
    kernel.inputs.forEach((x, j) => {
      const bshape = x.shape.slice(0, x.shape.length - 2);
      const lead = batch.length - bshape.length;
      const base = 8 + 4 * k4 * (1 + j);
      let acc: Dim = 1;
      for (let d = bshape.length - 1; d >= 0; d--) {
        const one = isConcrete(bshape[d]) && bshape[d] === 1;
        if (!one && !dimEquals(bshape[d], batch[lead + d])) throw new Error(`matmul: operand ${j} batch does not broadcast to the output's`);
        words[base + lead + d] = one ? 0 : acc;
        acc = mul(acc, bshape[d]);
      }
    });
  }
  return words;
}

/**
 * The uniform buffer once the symbolic sizes are bound, the number of workgroups (one per output
 * tile, to be folded by `dispatchSize(workgroups, 1)`), and the concrete shapes.
 */
export function matmulUniforms(
  kernel: MatmulKernel,
  sizes: ReadonlyMap<string, number>,
): { data: Uint32Array<ArrayBuffer>; workgroups: number; outShape: number[]; inShapes: number[][] } {
  const outShape = bindShape(kernel.output.shape, sizes);
  const inShapes = kernel.inputs.map((x) => bindShape(x.shape, sizes));
  const words = bindShape(matmulUniformDims(kernel), sizes);
  for (const v of words) if (v > 0xffffffff) throw new Error(`matmul: ${v} does not fit a u32 index`);
  return { data: Uint32Array.from(words), workgroups: words[6], outShape, inShapes };
}

/** The registry's lowering: one dispatch, a workgroup per output tile (the wide tiers and split k as GPU variants; the blocked and rows kernels for CPU adapters). */
export function matmulPlans(node: Node): KernelPlan[] {
  const k = lowerMatmul(node);
  const words = matmulUniformDims(k);
  const rows = lowerRowsMatmuls(node, words);
  return [{ op: 'matmul', wgsl: k.wgsl, uniforms: words, workgroups: words[6], cpuWgsl: lowerMatmul(node, { variant: 'blocked' }).wgsl, ...(rows.length > 0 ? { cpuVariants: rows } : {}), wide: widePlans(node, words) }];
}

/**
 * A matmul node's GPU variants (with a fused epilogue's store): the wide tiers, largest first, for
 * grids of many tiles, then split k (codegen/matmul-split.ts) for grids of few.
 */
export function widePlans(node: Node, words: readonly Dim[], epilogue?: MatmulEpilogue): WidePlan[] {
  const tiers = WIDE_TIERS.map((tier) => ({ name: tier.name, wgsl: lowerWideMatmul(node, tier, epilogue), workgroups: wideWorkgroups(tier, words), minWorkgroups: tier.minWorkgroups }));
  return [...tiers, { name: 'split', wgsl: lowerSplitMatmul(node, epilogue), workgroups: words[6], minWorkgroups: 1, maxBaseWorkgroups: SPLIT_MAX_TILES }];
}
