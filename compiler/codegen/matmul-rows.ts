// The matmul kernel for CPU adapters (lavapipe, SwiftShader): rows shared by a workgroup, vec4 columns per invocation.
//
// A CPU driver runs a workgroup's invocations as SIMD vectors (8 lanes on lavapipe with AVX2) and, on
// lavapipe, reads storage lane by lane: every read is a bounds-checked scalar load per lane and
// component (its LLVM IR, `GALLIVM_DEBUG=ir`), whether or not the address is the same in every lane. So
// a kernel's cost there is its reads per fma. Here a workgroup owns 8 rows of C and W x 8 vec4 columns;
// each invocation computes those 8 rows for 2 vec4 columns W apart: per k, 8 reads of A and 2 vec4
// reads of B (8 more) for 16 vec4 fmas (64). On lavapipe (2 cores, Mesa 25) a 512^3 product took 58 ms
// with the blocked kernel of the time (4x4 blocks: 8 reads per 16 fmas) and 32 ms here; the MLP's
// [128, 784] @ [784, 128] 5.8 -> 3.0 ms (a micro-benchmark of WGSL variants, rows 4 to 16 and 1 to 4
// vec4 columns per invocation, k unrolled: 8 x 2 was best or within noise of it). The blocked kernel now
// has 8x8 blocks too (codegen/matmul.ts) and serves where this one does not apply.
//
// It has its own grid (one workgroup per 8 rows by 8W vec4 columns of each batch matrix) and needs B
// read as vec4s along n, so it exists where B is not transposed and n is a known multiple of 4; W is the
// smallest multiple of 8 (at most 64) whose 2W vec4 columns cover n. B is bound as array<vec4<f32>>,
// which an empty buffer cannot back, so the runtime uses it only where k is positive (`requires`).
// On devices with subgroups of at least 8 lanes (lavapipe's are 8) a subgroup variant comes first: a
// workgroup owns 16 rows and each invocation 16 rows x 1 vec4 column. A is not read by every lane: lane
// s (mod 8) reads rows s and s + 8 of the next 4 k, and subgroupBroadcast hands each value to the whole
// subgroup (a register shuffle on a CPU), so per k an invocation reads 2 A values (amortized) and one
// vec4 of B (4 reads) for 16 vec4 fmas: 6 reads per 64 fmas, from 16. The MLP's [4096, 784] @ [784, 128]
// on lavapipe: 88 -> 51 ms; its [784, 4096] (A stored [k, m]) @ [4096, 128]: 84 -> 56 ms (micro-benchmark:
// 8 x 2, 16 x 1, 16 x 2, 24 x 1, 32 x 1 and 8 x 1 blocks, k by 2, 4, 8 and 16: 16 x 1 by 4 best or
// within noise; more accumulators spill). Every lane of a subgroup must hold the same rows, so the
// variant needs the workgroup to share them (it does) and subgroups of at least 8 lanes
// (`minSubgroupSize`; SwiftShader's are 4).
// Every output element accumulates one fma per k in increasing k from +0, as the blocked and tiled
// kernels do, so all of them agree bit for bit; the tests check exactly that.
import type { Node } from '../ir/types.ts';
import { type Dim, floorDiv, add, isConcrete, mul } from '../shapes/dim.ts';
import type { CpuVariantPlan } from './kernel.ts';
import { kernelStorageType, matmulBatchBases, matmulBatchFields, type MatmulEpilogue, matmulDims, matmulTransposes } from './matmul.ts';

/** Rows of C per workgroup of the plain rows kernel (each invocation's accumulators: ROWS x COLUMN_VECS vec4s). */
export const ROWS = 8;
/** vec4 columns per invocation of the plain rows kernel, W apart. */
export const COLUMN_VECS = 2;
/** The subgroup variants' block: rows per workgroup (and per invocation), vec4 columns per invocation, k per broadcast round. */
export const SUBGROUP_ROWS = 16;
export const SUBGROUP_COLUMN_VECS = 1;
export const SUBGROUP_K_UNROLL = 4;
/** Lanes that read A for the subgroup (subgroups need at least this many). */
const SPREAD = 8;

const LANES = ['x', 'y', 'z', 'w'];

/**
 * A rows kernel's shape: rows per workgroup, columns per invocation (`vec4` B: vec4s of B read along n;
 * `scalar` B: single elements of B in any layout), and whether A comes through subgroup broadcasts.
 */
interface RowsLayout {
  readonly name: 'rows' | 'subgroup-rows' | 'subgroup-rows-scalar';
  readonly rows: number;
  readonly b: 'vec4' | 'scalar';
  /** vec4s (`vec4` B) or elements (`scalar` B, 2 or 4) of B per invocation, W apart. */
  readonly columns: number;
  readonly subgroup: boolean;
}
const PLAIN: RowsLayout = { name: 'rows', rows: ROWS, b: 'vec4', columns: COLUMN_VECS, subgroup: false };
const SUBGROUP: RowsLayout = { name: 'subgroup-rows', rows: SUBGROUP_ROWS, b: 'vec4', columns: SUBGROUP_COLUMN_VECS, subgroup: true };
/** Scalar columns per invocation of the subgroup variant that reads B element by element: 4, or 2 where n <= 16 (an n = 10 classifier: 16 columns computed, not 32). */
export const scalarColumns = (n: Dim): number => (isConcrete(n) && n <= 16 ? 2 : 4);

/** Invocations per workgroup for n columns: W invocations of `columns` columns each (vec4s where `perColumn` is 4) cover n, W a multiple of 8 in [8, 64]. */
export function rowsInvocations(n: number, columns = COLUMN_VECS, perColumn = 4): number {
  const groups = Math.ceil(n / perColumn / columns);
  return Math.min(64, Math.max(8, Math.ceil(groups / 8) * 8));
}

/**
 * The rows variants of a matmul node (plain store, or a fused epilogue's), in order of preference, or
 * none for other dtypes. Where B is read along n in vec4s (B not transposed, n a known multiple of 4):
 * the subgroup variant, then the plain one; both need k positive (B is bound as vec4s, which an empty
 * buffer cannot back). Elsewhere (B transposed, n odd or symbolic): the subgroup variant reading B
 * element by element, which does not (the blocked kernel serves devices without subgroups there).
 * `words` are the matmul's uniform words (m, n, k, batch count, ...), from which the grids are computed.
 */
export function lowerRowsMatmuls(node: Node, words: readonly Dim[], epilogue?: MatmulEpilogue): CpuVariantPlan[] {
  const [a, b] = node.inputs.map((v) => v.type);
  if (a.dtype !== 'f32' || b.dtype !== 'f32') return [];
  const { n } = matmulDims(node);
  if (matmulTransposes(node.attrs).b || !isConcrete(n) || n <= 0 || n % 4 !== 0) {
    const scalar: RowsLayout = { name: 'subgroup-rows-scalar', rows: SUBGROUP_ROWS, b: 'scalar', columns: scalarColumns(n), subgroup: true };
    return [{ ...rowsKernel(node, words, scalar, epilogue), minSubgroupSize: SPREAD }];
  }
  return [{ ...rowsKernel(node, words, SUBGROUP, epilogue), minSubgroupSize: SPREAD }, rowsKernel(node, words, PLAIN, epilogue)];
}

function rowsKernel(node: Node, words: readonly Dim[], layout: RowsLayout, epilogue?: MatmulEpilogue): CpuVariantPlan {
  const { rows: R, subgroup } = layout;
  const vecB = layout.b === 'vec4';
  // vec4 B: CV accumulators of vec4 per row (columns W apart in vec4s); scalar B: one vecC per row (C columns W apart)
  const CV = vecB ? layout.columns : 1;
  const C = vecB ? 4 : layout.columns;
  const tr = matmulTransposes(node.attrs);
  const { k: kDim, n: nDim } = matmulDims(node);
  // symbolic n (scalar B only): one subgroup of 8 invocations per workgroup, the column tiles counted at run time
  const W = isConcrete(nDim) ? rowsInvocations(nDim, layout.columns, vecB ? 4 : 1) : SPREAD;
  const span = W * layout.columns; // vec4 columns (vec4 B) or columns (scalar B) per workgroup
  const tilesN = vecB ? `${Math.ceil((nDim as number) / 4 / span)}u` : 'tilesN';
  const out = node.outputs[0].type;
  const batchRank = out.shape.length - 2;
  const ty = kernelStorageType(out.dtype);
  const vecOut = vecB && !epilogue;
  const accType = C === 1 ? 'f32' : `vec${C}<f32>`;
  const acc = (i: number, j: number) => (vecB ? `acc${i}_${j}` : `acc${i}`);
  const aAt = (base: string, q: string) => `a[${base} + ${tr.a ? `${q} * m` : q}]`;
  const bAt = (j: number, q: string) => (tr.b ? `b[cb${j} + ${q}]` : `b[cb${j} + ${q} * n]`);

  const L: string[] = [];
  if (subgroup) L.push('enable subgroups;', '');
  const bRead = vecB ? `${CV} vec4 column${CV > 1 ? 's' : ''} of B per invocation` : `${C} columns of B${tr.b ? ' (stored [n, k])' : ''} per invocation read element by element`;
  L.push(
    subgroup
      ? `// matmul(f32) batch rank ${batchRank}, CPU subgroup rows variant: ${R} rows of C per workgroup, A${tr.a ? ' (stored [k, m])' : ''} read by ${SPREAD} lanes ${SUBGROUP_K_UNROLL} k at a time and broadcast to the subgroup, ${bRead}, ${W} invocations.`
      : `// matmul(f32) batch rank ${batchRank}, CPU rows variant: ${R} rows of C per workgroup (uniform reads of A${tr.a ? ', stored [k, m]' : ''}), ${CV} vec4 columns of B per invocation, ${W} invocations.`,
  );
  if (epilogue) L.push(epilogue.comment);
  L.push('struct Params {', '  dims: vec4<u32>, // m, n, k, batch count', "  tiles: vec4<u32>, // the base kernel's 32x32 grid (unused here)");
  L.push(...matmulBatchFields(batchRank));
  L.push(...(epilogue?.fields ?? []), '}');
  L.push('@group(0) @binding(0) var<uniform> p: Params;');
  L.push(`@group(0) @binding(1) var<storage, read> a: array<${ty}>;`);
  L.push(`@group(0) @binding(2) var<storage, read> b: array<${vecB ? 'vec4<f32>' : ty}>;`);
  if (epilogue) L.push(...epilogue.declarations);
  else L.push(`@group(0) @binding(3) var<storage, read_write> out: array<${vecOut ? 'vec4<f32>' : ty}>;`);
  L.push('');
  L.push(`@compute @workgroup_size(${W})`);
  L.push(`fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32${subgroup ? ', @builtin(subgroup_invocation_id) sid: u32' : ''}) {`);
  L.push('  let m = p.dims.x;', '  let n = p.dims.y;', '  let k = p.dims.z;', vecB ? '  let n4 = n / 4u;' : `  let tilesN = (n + ${span - 1}u) / ${span}u;`);
  L.push(`  let tilesM = (m + ${R - 1}u) / ${R}u;`);
  L.push('  let t = wid.y * nwg.x + wid.x;');
  L.push(`  if (t >= ${tilesN} * tilesM * p.dims.w) { return; }`);
  L.push(`  let v0 = (t % ${tilesN}) * ${span}u;`);
  L.push(`  let rest = t / ${tilesN};`);
  L.push(`  let row0 = (rest % tilesM) * ${R}u;`);
  L.push('  let bi = rest / tilesM;');
  L.push(...matmulBatchBases(batchRank));
  if (epilogue) L.push(...epilogue.prologue);
  // rows past m read the last row (in bounds) and are not stored; columns past n likewise
  L.push('  let rl = m - 1u;');
  const rowBase = (row: string) => `aBase + min(${row}, rl)${tr.a ? '' : ' * k'}`;
  if (subgroup) for (let g = 0; g < R / SPREAD; g++) L.push(`  let ar${g} = ${rowBase(`row0 + ${g * SPREAD}u + sid % ${SPREAD}u`)};`);
  else for (let i = 0; i < R; i++) L.push(`  let ra${i} = ${rowBase(`row0 + ${i}u`)};`);
  if (vecB) for (let j = 0; j < CV; j++) L.push(`  let c${j} = v0 + li + ${j * W}u;`, `  let cb${j} = bBase / 4u + min(c${j}, n4 - 1u);`);
  else for (let j = 0; j < C; j++) L.push(`  let c${j} = v0 + li + ${j * W}u;`, `  let cb${j} = bBase + min(c${j}, n - 1u)${tr.b ? ' * k' : ''};`);
  for (let i = 0; i < R; i++) for (let j = 0; j < CV; j++) L.push(`  var ${acc(i, j)} = ${accType}(0.0);`);
  /** One k step's fmas: row i's A value is `aOf(i)`, B is read at `q`. */
  const step = (q: string, aOf: (i: number) => string, indent: string) => {
    if (vecB) for (let j = 0; j < CV; j++) L.push(`${indent}let b${j} = b[cb${j} + ${q} * n4];`);
    else L.push(`${indent}let b0 = ${accType}(${Array.from({ length: C }, (_, j) => bAt(j, q)).join(', ')});`);
    for (let i = 0; i < R; i++) {
      L.push(`${indent}let a${i} = ${accType}(${aOf(i)});`);
      for (let j = 0; j < CV; j++) L.push(`${indent}${acc(i, j)} = fma(a${i}, b${j}, ${acc(i, j)});`);
    }
  };
  const broadcast = (x: (g: number) => string) => (i: number) => `subgroupBroadcast(${x(Math.floor(i / SPREAD))}, ${i % SPREAD}u)`;
  if (subgroup) {
    const U = SUBGROUP_K_UNROLL;
    // whole rounds of U k: each of the first 8 lanes reads U values of its rows, the subgroup shares them
    L.push(`  let kr = k - k % ${U}u;`, `  for (var q0 = 0u; q0 < kr; q0 += ${U}u) {`);
    for (let u = 0; u < U; u++) for (let g = 0; g < R / SPREAD; g++) L.push(`    let x${u}_${g} = ${aAt(`ar${g}`, `(q0 + ${u}u)`)};`);
    for (let u = 0; u < U; u++) {
      L.push('    {');
      step(`(q0 + ${u}u)`, broadcast((g) => `x${u}_${g}`), '      ');
      L.push('    }');
    }
    L.push('  }', '  for (var q = kr; q < k; q++) {');
    for (let g = 0; g < R / SPREAD; g++) L.push(`    let x${g} = ${aAt(`ar${g}`, 'q')};`);
    step('q', broadcast((g) => `x${g}`), '    ');
    L.push('  }');
  } else {
    L.push('  for (var q = 0u; q < k; q++) {');
    step('q', (i) => aAt(`ra${i}`, 'q'), '    ');
    L.push('  }');
  }
  for (let i = 0; i < R; i++) {
    L.push(`  if (row0 + ${i}u < m) {`, `    let r = row0 + ${i}u;`);
    if (vecB) {
      for (let j = 0; j < CV; j++) {
        const v = acc(i, j);
        if (vecOut) L.push(`    if (c${j} < n4) { out[oBase / 4u + r * n4 + c${j}] = ${v}; }`);
        else {
          L.push(`    if (c${j} < n4) {`);
          for (let l = 0; l < 4; l++) {
            const c = `c${j} * 4u${l > 0 ? ` + ${l}u` : ''}`;
            L.push(`      ${store(`oBase + r * n + ${c}`, 'r', c, `${v}.${LANES[l]}`)}`);
          }
          L.push('    }');
        }
      }
    } else {
      for (let j = 0; j < C; j++) L.push(`    if (c${j} < n) { ${store(`oBase + r * n + c${j}`, 'r', `c${j}`, C === 1 ? acc(i, 0) : `${acc(i, 0)}.${LANES[j]}`)} }`);
    }
    L.push('  }');
  }
  L.push('}', '');
  if (epilogue) L.push(...epilogue.functions);
  const [m, , , count] = words;
  const tiles: Dim = vecB ? Math.ceil((nDim as number) / 4 / span) : floorDiv(add(nDim, span - 1), span);
  return { name: layout.name, wgsl: L.join('\n'), workgroups: mul(count, mul(floorDiv(add(m, R - 1), R), tiles)), ...(vecB ? { requires: kDim } : {}) };

  /** The store of one output element at flat index `i`: the plain store or the epilogue's. */
  function store(i: string, r: string, c: string, v: string): string {
    return epilogue ? `${epilogue.call}(${i}, ${r}, ${c}, ${v});` : `out[${i}] = ${v};`;
  }
}
