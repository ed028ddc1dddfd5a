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
// Every output element accumulates one fma per k in increasing k from +0, as the blocked and tiled
// kernels do, so the three agree bit for bit; the tests check exactly that.
import type { Node } from '../ir/types.ts';
import { type Dim, floorDiv, add, isConcrete, mul } from '../shapes/dim.ts';
import { kernelStorageType, matmulBatchBases, matmulBatchFields, type MatmulEpilogue, matmulDims, matmulTransposes } from './matmul.ts';

/** Rows of C per workgroup (each invocation's accumulators: ROWS x COLUMN_VECS vec4s). */
export const ROWS = 8;
/** vec4 columns per invocation, W apart. */
export const COLUMN_VECS = 2;

const LANES = ['x', 'y', 'z', 'w'];

/** The CPU rows variant of a matmul: its WGSL, its own workgroup count, and the size that must be positive for it to run. */
export interface RowsMatmulPlan {
  readonly name: 'rows';
  readonly wgsl: string;
  readonly workgroups: Dim;
  /** k: B is bound as vec4s, so an empty B (k = 0) keeps the blocked kernel. */
  readonly requires: Dim;
}

/** Invocations per workgroup for n columns: 2W vec4 columns cover n, W a multiple of 8 in [8, 64]. */
export function rowsInvocations(n: number): number {
  const vecs = Math.ceil(n / 4 / COLUMN_VECS);
  return Math.min(64, Math.max(8, Math.ceil(vecs / 8) * 8));
}

/**
 * The rows variant of a matmul node (plain store, or a fused epilogue's), or null where it does not
 * apply: B transposed, or n not a known multiple of 4. `words` are the matmul's uniform words (m, n, k,
 * batch count, ...), from which the grid is computed.
 */
export function lowerRowsMatmul(node: Node, words: readonly Dim[], epilogue?: MatmulEpilogue): RowsMatmulPlan | null {
  const [a, b] = node.inputs.map((v) => v.type);
  const out = node.outputs[0].type;
  if (a.dtype !== 'f32' || b.dtype !== 'f32') return null;
  const tr = matmulTransposes(node.attrs);
  const { k: kDim, n: nDim } = matmulDims(node);
  if (tr.b || !isConcrete(nDim) || nDim <= 0 || nDim % 4 !== 0) return null;
  const W = rowsInvocations(nDim);
  const span = W * COLUMN_VECS; // vec4 columns per workgroup
  const tilesN = Math.ceil(nDim / 4 / span);
  const batchRank = out.shape.length - 2;
  const ty = kernelStorageType(out.dtype);
  const vecOut = !epilogue;
  const acc = (i: number, j: number) => `acc${i}_${j}`;

  const L: string[] = [];
  L.push(`// matmul(f32) batch rank ${batchRank}, CPU rows variant: ${ROWS} rows of C per workgroup (uniform reads of A${tr.a ? ', stored [k, m]' : ''}), ${COLUMN_VECS} vec4 columns of B per invocation, ${W} invocations.`);
  if (epilogue) L.push(epilogue.comment);
  L.push('struct Params {', '  dims: vec4<u32>, // m, n, k, batch count', "  tiles: vec4<u32>, // the base kernel's 32x32 grid (unused here)");
  L.push(...matmulBatchFields(batchRank));
  L.push(...(epilogue?.fields ?? []), '}');
  L.push('@group(0) @binding(0) var<uniform> p: Params;');
  L.push(`@group(0) @binding(1) var<storage, read> a: array<${ty}>;`);
  L.push('@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;');
  if (epilogue) L.push(...epilogue.declarations);
  else L.push('@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;');
  L.push('');
  L.push(`@compute @workgroup_size(${W})`);
  L.push('fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {');
  L.push('  let m = p.dims.x;', '  let n = p.dims.y;', '  let k = p.dims.z;', '  let n4 = n / 4u;');
  L.push(`  let tilesM = (m + ${ROWS - 1}u) / ${ROWS}u;`);
  L.push('  let t = wid.y * nwg.x + wid.x;');
  L.push(`  if (t >= ${tilesN}u * tilesM * p.dims.w) { return; }`);
  L.push(`  let v0 = (t % ${tilesN}u) * ${span}u;`);
  L.push(`  let rest = t / ${tilesN}u;`);
  L.push(`  let row0 = (rest % tilesM) * ${ROWS}u;`);
  L.push('  let bi = rest / tilesM;');
  L.push(...matmulBatchBases(batchRank));
  if (epilogue) L.push(...epilogue.prologue);
  // rows past m read the last row (uniform, in bounds) and are not stored; columns past n likewise
  L.push('  let rl = m - 1u;');
  for (let i = 0; i < ROWS; i++) L.push(`  let ra${i} = aBase + min(row0 + ${i}u, rl)${tr.a ? '' : ' * k'};`);
  for (let j = 0; j < COLUMN_VECS; j++) L.push(`  let c${j} = v0 + li + ${j * W}u;`, `  let cb${j} = bBase / 4u + min(c${j}, n4 - 1u);`);
  for (let i = 0; i < ROWS; i++) for (let j = 0; j < COLUMN_VECS; j++) L.push(`  var ${acc(i, j)} = vec4<f32>(0.0);`);
  L.push('  for (var q = 0u; q < k; q++) {');
  for (let j = 0; j < COLUMN_VECS; j++) L.push(`    let b${j} = b[cb${j} + q * n4];`);
  for (let i = 0; i < ROWS; i++) {
    L.push(`    let a${i} = vec4<f32>(a[ra${i} + ${tr.a ? 'q * m' : 'q'}]);`);
    for (let j = 0; j < COLUMN_VECS; j++) L.push(`    ${acc(i, j)} = fma(a${i}, b${j}, ${acc(i, j)});`);
  }
  L.push('  }');
  for (let i = 0; i < ROWS; i++) {
    L.push(`  if (row0 + ${i}u < m) {`, `    let r = row0 + ${i}u;`);
    for (let j = 0; j < COLUMN_VECS; j++) {
      const v = acc(i, j);
      if (vecOut) L.push(`    if (c${j} < n4) { out[oBase / 4u + r * n4 + c${j}] = ${v}; }`);
      else {
        L.push(`    if (c${j} < n4) {`);
        for (let l = 0; l < 4; l++) {
          const c = `c${j} * 4u${l > 0 ? ` + ${l}u` : ''}`;
          L.push(`      ${epilogue!.call}(oBase + r * n + ${c}, r, ${c}, ${v}.${LANES[l]});`);
        }
        L.push('    }');
      }
    }
    L.push('  }');
  }
  L.push('}', '');
  if (epilogue) L.push(...epilogue.functions);
  const [m, , , count] = words;
  return { name: 'rows', wgsl: L.join('\n'), workgroups: mul(count, mul(floorDiv(add(m, ROWS - 1), ROWS), tilesN)), requires: kDim };
}
