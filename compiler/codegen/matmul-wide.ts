// Wide-tile matmul kernels for discrete GPUs: 64x64 or 128x128 output tiles, an 8x8 or 4x4 register block per invocation.
//
// The base tiled kernel (codegen/matmul.ts, 32x32 tiles, 64 invocations) keeps every GPU busy on small
// and medium products; on a large one it re-reads each operand from memory n / 32 times and does 16 fmas
// per 8 words read from workgroup memory. The wide tiers here follow the classic register-blocked SGEMM
// (as in CUTLASS's SIMT kernels and the hand-written WebGPU matmuls that reach tens of TFLOP/s): a
// workgroup of up to 256 invocations computes a TM x TN tile, each invocation an RM x RN block held in
// RM * RN / 4 named vec4 accumulators. The k axis is walked in steps of TK: both tiles are staged in
// workgroup memory k-major (tileA[k][row], tileB[k][column], as vec4s along rows and columns), so each
// k of the inner loop reads RM / 4 vec4s of A and RN / 4 of B for RM * RN fmas. An invocation's rows are
// split in groups of 4 spaced TM * 4 / RM apart (its columns likewise), so the vec4 reads of a warp are
// broadcasts (A) or consecutive (B). The next step's global loads are issued into registers before the
// current step's fmas (one buffer of workgroup memory, two barriers a step), so memory latency overlaps
// arithmetic.
//
// Same contract as the base kernel: the same uniform words (m, n, k, batch count; its own tile grid is
// computed from them), bindings and epilogue (codegen/fused-matmul.ts), transposed operands, zero-filled
// edges so any m, n, k works, vec4 global access where `matmulVectorAccess` allows it. Every output
// element accumulates one fma per k in increasing k from +0 (zero-padded k past the end adds exact
// zeros), so a wide tier's result is the base kernel's, bit for bit; the tests check exactly that.
// The runtime picks a tier per dispatch on GPU adapters when the product has enough tiles to fill the
// device (`minWorkgroups`); CPU adapters keep the blocked kernel.
import type { Node } from '../ir/types.ts';
import { add, type Dim, floorDiv, isConcrete, mul } from '../shapes/dim.ts';
import { kernelStorageType, matmulBatchBases, matmulBatchFields, type MatmulEpilogue, matmulDims, matmulTransposes, matmulVectorAccess, vec4Load } from './matmul.ts';

/** One wide tier: a TM x TN output tile per workgroup, k steps of TK, an RM x RN block per invocation. */
export interface WideTier {
  readonly name: string;
  readonly tm: number;
  readonly tn: number;
  readonly tk: number;
  readonly rm: number;
  readonly rn: number;
  /** The runtime uses this tier only when a dispatch has at least this many of its tiles. */
  readonly minWorkgroups: number;
}

/**
 * Tiers the sweep (bench/matmul-sweep.ts) times. The thresholds are set from its run on an H200 (132
 * SMs; docs/benchmarks.md): a tier pays once a product has about twice as many of its tiles as the
 * device has multiprocessors; below that the base kernel's 32x32 tiles keep more of them busy.
 */
export const SWEEP_TIERS: readonly WideTier[] = [
  { name: 'w128x128k16r8x8', tm: 128, tn: 128, tk: 16, rm: 8, rn: 8, minWorkgroups: 256 },
  { name: 'w64x128k16r4x8', tm: 64, tn: 128, tk: 16, rm: 4, rn: 8, minWorkgroups: 128 },
  { name: 'w64x64k16r4x4', tm: 64, tn: 64, tk: 16, rm: 4, rn: 4, minWorkgroups: 128 },
  { name: 'w128x128k8r8x8', tm: 128, tn: 128, tk: 8, rm: 8, rn: 8, minWorkgroups: 256 },
  { name: 'w128x64k16r8x4', tm: 128, tn: 64, tk: 16, rm: 8, rn: 4, minWorkgroups: 256 },
  { name: 'w64x64k8r8x8', tm: 64, tn: 64, tk: 8, rm: 8, rn: 8, minWorkgroups: 256 },
];

/**
 * The tiers the compiler offers, in the order the runtime tries them (H200 sweep, GFLOP/s of the
 * chosen tier against the base kernel): 4096^3 35,195 vs 23,037; 2048^3 34,180 vs 21,455; the
 * Transformer's [4096, 256] @ [256, 768] 29,598 vs 20,428 (128 x 128 would have 192 tiles); 1024^3
 * 26,354 vs 13,224; the MLP's [4096, 784] @ [784, 128] 22,172 vs 18,352 (64 x 64, 128 tiles).
 */
export const WIDE_TIERS: readonly WideTier[] = SWEEP_TIERS.slice(0, 3);

const LANES = ['x', 'y', 'z', 'w'];

/** Invocations per workgroup of a tier. */
export const tierInvocations = (t: WideTier): number => (t.tm / t.rm) * (t.tn / t.rn);

/** The workgroup count of a tier for a matmul's uniform words (m, n, k, batch count, ...): one per output tile. */
export function wideWorkgroups(tier: WideTier, words: readonly Dim[]): Dim {
  const [m, n, , count] = words;
  return mul(count, mul(floorDiv(add(m, tier.tm - 1), tier.tm), floorDiv(add(n, tier.tn - 1), tier.tn)));
}

/** The WGSL of a wide tier for a matmul node (plain store, or the fused epilogue's). */
export function lowerWideMatmul(node: Node, tier: WideTier, epilogue?: MatmulEpilogue): string {
  const { tm: TM, tn: TN, tk: TK, rm: RM, rn: RN } = tier;
  const threads = tierInvocations(tier);
  const XN = TN / RN; // invocations along columns
  if (threads > 256 || RM % 4 !== 0 || RN % 4 !== 0 || TK % 4 !== 0) throw new Error(`matmul tier ${tier.name} is not valid`);
  const [a, b] = node.inputs.map((v) => v.type);
  const out = node.outputs[0].type;
  if (a.dtype !== 'f32' || b.dtype !== 'f32') throw new Error(`matmul is lowered for f32 only, found ${a.dtype} @ ${b.dtype}`);
  const batchRank = out.shape.length - 2;
  const ty = kernelStorageType(out.dtype);
  const access = matmulVectorAccess(node);
  const tr = matmulTransposes(node.attrs);
  const { k: kDim, n: nDim } = matmulDims(node);
  const vecOut = isConcrete(nDim) && nDim > 0 && nDim % 4 === 0 && isConcrete(kDim) && kDim > 0 && !epilogue;
  const loadsA = (TM * TK) / 4 / threads;
  const loadsB = (TN * TK) / 4 / threads;
  if (!Number.isInteger(loadsA) || !Number.isInteger(loadsB)) throw new Error(`matmul tier ${tier.name}: tiles do not split evenly over invocations`);

  const L: string[] = [];
  const trText = tr.a || tr.b ? ` (${[tr.a ? 'A stored [k, m]' : '', tr.b ? 'B stored [n, k]' : ''].filter((x) => x).join(', ')}: read transposed)` : '';
  L.push(`// matmul(f32) batch rank ${batchRank}, wide tier ${tier.name}: ${TM}x${TN} output tiles, k steps of ${TK} through workgroup memory (k-major), a ${RM}x${RN} register block per invocation, next step prefetched into registers${access.a || access.b ? `, vec4 loads of ${[access.a ? 'A' : '', access.b ? 'B' : ''].filter((x) => x).join(' and ')}` : ''}${trText}.`);
  if (epilogue) L.push(epilogue.comment);
  L.push('struct Params {', '  dims: vec4<u32>, // m, n, k, batch count', '  tiles: vec4<u32>, // the base kernel\'s 32x32 grid (unused here)');
  L.push(...matmulBatchFields(batchRank));
  L.push(...(epilogue?.fields ?? []), '}');
  L.push('@group(0) @binding(0) var<uniform> p: Params;');
  L.push(`@group(0) @binding(1) var<storage, read> a: array<${access.a ? 'vec4<f32>' : ty}>;`);
  L.push(`@group(0) @binding(2) var<storage, read> b: array<${access.b ? 'vec4<f32>' : ty}>;`);
  if (epilogue) L.push(...epilogue.declarations);
  else L.push(`@group(0) @binding(3) var<storage, read_write> out: array<${vecOut ? 'vec4<f32>' : ty}>;`);
  L.push(`var<workgroup> tileA: array<vec4<f32>, ${(TK * TM) / 4}>; // [${TK} k][${TM / 4} vec4s of rows]`);
  L.push(`var<workgroup> tileB: array<vec4<f32>, ${(TK * TN) / 4}>; // [${TK} k][${TN / 4} vec4s of columns]`);
  L.push('');
  L.push(`@compute @workgroup_size(${threads})`);
  L.push('fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {');
  L.push('  let m = p.dims.x;');
  L.push('  let n = p.dims.y;');
  L.push('  let k = p.dims.z;');
  L.push(`  let tilesN = (n + ${TN - 1}u) / ${TN}u;`);
  L.push(`  let tilesM = (m + ${TM - 1}u) / ${TM}u;`);
  L.push('  let t = wid.y * nwg.x + wid.x;');
  L.push('  if (t >= tilesN * tilesM * p.dims.w) { return; }');
  L.push(`  let col0 = (t % tilesN) * ${TN}u;`);
  L.push('  let rest = t / tilesN;');
  L.push(`  let row0 = (rest % tilesM) * ${TM}u;`);
  L.push('  let bi = rest / tilesM;');
  L.push(...matmulBatchBases(batchRank));
  if (epilogue) L.push(...epilogue.prologue);
  L.push(`  let tx = li % ${XN}u;`);
  L.push(`  let ty = li / ${XN}u;`);
  const acc = (r: number, h: number) => `acc${r}_${h}`;
  for (let r = 0; r < RM; r++) for (let h = 0; h < RN / 4; h++) L.push(`  var ${acc(r, h)} = vec4<f32>(0.0);`);
  for (let l = 0; l < loadsA; l++) L.push(`  var pa${l} = vec4<f32>(0.0);`);
  for (let l = 0; l < loadsB; l++) L.push(`  var pb${l} = vec4<f32>(0.0);`);

  const load = (target: string, buf: string, base: string, row: string, rows: string, col: string, cols: string, vector: boolean, indent: string) => {
    L.push(...vec4Load(target, buf, base, row, rows, col, cols, vector, indent, false));
  };

  // the global loads of the step starting at k0 into pa / pb (element e = li + l * threads of the tile)
  const globalLoads = (indent: string) => {
    for (let l = 0; l < loadsA; l++) {
      L.push(`${indent}{`);
      const i2 = indent + '  ';
      L.push(`${i2}let e = li + ${l * threads}u;`);
      if (!tr.a) {
        // A [m, k]: row e / (TK / 4) of the tile, its k 4 * (e % (TK / 4)) .. + 3
        L.push(`${i2}let ar = row0 + e / ${TK / 4}u;`);
        L.push(`${i2}let ac = k0 + (e % ${TK / 4}u) * 4u;`);
        load(`pa${l}`, 'a', 'aBase', 'ar', 'm', 'ac', 'k', access.a, i2);
      } else {
        // A^T [k, m]: k row e / (TM / 4) of the tile, its rows 4 * (e % (TM / 4)) .. + 3
        L.push(`${i2}let ak = k0 + e / ${TM / 4}u;`);
        L.push(`${i2}let ar = row0 + (e % ${TM / 4}u) * 4u;`);
        load(`pa${l}`, 'a', 'aBase', 'ak', 'k', 'ar', 'm', access.a, i2);
      }
      L.push(`${indent}}`);
    }
    for (let l = 0; l < loadsB; l++) {
      L.push(`${indent}{`);
      const i2 = indent + '  ';
      L.push(`${i2}let e = li + ${l * threads}u;`);
      if (!tr.b) {
        // B [k, n]: k row e / (TN / 4) of the tile, its columns 4 * (e % (TN / 4)) .. + 3
        L.push(`${i2}let bk = k0 + e / ${TN / 4}u;`);
        L.push(`${i2}let bc = col0 + (e % ${TN / 4}u) * 4u;`);
        load(`pb${l}`, 'b', 'bBase', 'bk', 'k', 'bc', 'n', access.b, i2);
      } else {
        // B^T [n, k]: column e / (TK / 4) of the tile, its k 4 * (e % (TK / 4)) .. + 3
        L.push(`${i2}let bc = col0 + e / ${TK / 4}u;`);
        L.push(`${i2}let bk = k0 + (e % ${TK / 4}u) * 4u;`);
        load(`pb${l}`, 'b', 'bBase', 'bc', 'n', 'bk', 'k', access.b, i2);
      }
      L.push(`${indent}}`);
    }
  };
  // the registers into workgroup memory, k-major
  const sharedStores = (indent: string) => {
    for (let l = 0; l < loadsA; l++) {
      L.push(`${indent}{`);
      L.push(`${indent}  let e = li + ${l * threads}u;`);
      if (!tr.a) {
        // lane j is k 4 * (e % (TK / 4)) + j of row e / (TK / 4): tileA[k][row / 4][row % 4]
        L.push(`${indent}  let r = e / ${TK / 4}u;`);
        L.push(`${indent}  let q = (e % ${TK / 4}u) * ${TM}u + r / 4u;`);
        L.push(`${indent}  let lane = r % 4u;`);
        for (let j = 0; j < 4; j++) L.push(`${indent}  tileA[q${j > 0 ? ` + ${(j * TM) / 4}u` : ''}][lane] = pa${l}.${LANES[j]};`);
      } else {
        L.push(`${indent}  tileA[e] = pa${l};`);
      }
      L.push(`${indent}}`);
    }
    for (let l = 0; l < loadsB; l++) {
      L.push(`${indent}{`);
      L.push(`${indent}  let e = li + ${l * threads}u;`);
      if (!tr.b) {
        L.push(`${indent}  tileB[e] = pb${l};`);
      } else {
        // lane j is k 4 * (e % (TK / 4)) + j of column e / (TK / 4): tileB[k][column / 4][column % 4]
        L.push(`${indent}  let c = e / ${TK / 4}u;`);
        L.push(`${indent}  let q = (e % ${TK / 4}u) * ${TN}u + c / 4u;`);
        L.push(`${indent}  let lane = c % 4u;`);
        for (let j = 0; j < 4; j++) L.push(`${indent}  tileB[q${j > 0 ? ` + ${(j * TN) / 4}u` : ''}][lane] = pb${l}.${LANES[j]};`);
      }
      L.push(`${indent}}`);
    }
  };

  L.push(`  let steps = (k + ${TK - 1}u) / ${TK}u;`);
  L.push('  if (steps > 0u) {');
  L.push('    let k0 = 0u;');
  globalLoads('    ');
  L.push('  }');
  L.push('  for (var s = 0u; s < steps; s++) {');
  sharedStores('    ');
  L.push('    workgroupBarrier();');
  L.push('    if (s + 1u < steps) {');
  L.push(`      let k0 = (s + 1u) * ${TK}u;`);
  globalLoads('      ');
  L.push('    }');
  // RM / 4 row groups spaced TM * 4 / RM apart, RN / 4 column groups spaced TN * 4 / RN apart
  L.push(`    for (var kk = 0u; kk < ${TK}u; kk++) {`);
  for (let g = 0; g < RM / 4; g++) L.push(`      let a${g} = tileA[kk * ${TM / 4}u + ${g * (TM / RM)}u + ty];`);
  for (let h = 0; h < RN / 4; h++) L.push(`      let b${h} = tileB[kk * ${TN / 4}u + ${h * (TN / RN)}u + tx];`);
  for (let g = 0; g < RM / 4; g++) {
    for (let i = 0; i < 4; i++) {
      for (let h = 0; h < RN / 4; h++) L.push(`      ${acc(g * 4 + i, h)} = fma(vec4<f32>(a${g}.${LANES[i]}), b${h}, ${acc(g * 4 + i, h)});`);
    }
  }
  L.push('    }');
  L.push('    workgroupBarrier();');
  L.push('  }');

  // stores: row row0 + g * (TM * 4 / RM) + ty * 4 + i, columns col0 + h * (TN * 4 / RN) + tx * 4 + 0..3
  for (let g = 0; g < RM / 4; g++) {
    for (let i = 0; i < 4; i++) {
      L.push('  {');
      L.push(`    let r = row0 + ${g * ((TM * 4) / RM) + i}u + ty * 4u;`);
      L.push('    if (r < m) {');
      for (let h = 0; h < RN / 4; h++) {
        L.push(`      let c${h} = col0 + ${h * ((TN * 4) / RN)}u + tx * 4u;`);
        const v = acc(g * 4 + i, h);
        if (vecOut) L.push(`      if (c${h} < n) { out[(oBase + r * n + c${h}) / 4u] = ${v}; }`);
        else {
          for (let j = 0; j < 4; j++) {
            const c = j === 0 ? `c${h}` : `c${h} + ${j}u`;
            const st = epilogue ? `${epilogue.call}(oBase + r * n + ${c}, r, ${c}, ${v}.${LANES[j]});` : `out[oBase + r * n + ${c}] = ${v}.${LANES[j]};`;
            L.push(`      if (${c} < n) { ${st} }`);
          }
        }
      }
      L.push('    }');
      L.push('  }');
    }
  }
  L.push('}', '');
  if (epilogue) L.push(...epilogue.functions);
  return L.join('\n');
}
