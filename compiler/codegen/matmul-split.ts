// The split-k matmul kernel for GPUs: the base kernel's 32x32 tiles with four k slices per workgroup, for products with few tiles and a long k.
//
// A weight gradient (x^T @ dy: [256, 4096] @ [4096, 768] in the Transformer benchmark, [784, 4096] @
// [4096, 128] in the MLP's) has few output tiles and a long k: the base kernel's 192 workgroups of 64
// invocations leave a large GPU mostly idle while each walks 128 k steps. Here a workgroup of 256
// invocations computes the same 32x32 tile as four slices of 64: slice s takes the k steps s, s + 4,
// s + 8, ... of 16 (so the four walk memory together), each with its own 32x16 and 16x32 tiles in
// workgroup memory (4 x 4 KiB), each invocation a 4x4 register block as in the base kernel. At the end
// the slices' partial blocks meet in the same workgroup memory and slice 0 adds them in a fixed order,
// ((s0 + s1) + s2) + s3, then stores (or applies the fused epilogue). Deterministic, but not the base
// kernel's bits: its sums are split four ways.
//
// Same contract as the base kernel (codegen/matmul.ts): uniforms, bindings, the tile grid and so the
// workgroup count, transposed operands, vec4 global reads where `matmulVectorAccess` allows, zero fill
// past the edges. The runtime uses it on GPU adapters where the base grid has at most
// `SPLIT_MAX_TILES` tiles.
import type { Node } from '../ir/types.ts';
import { isConcrete } from '../shapes/dim.ts';
import { kernelStorageType, matmulBatchBases, matmulBatchFields, type MatmulEpilogue, matmulDims, matmulTransposes, matmulVectorAccess, vec4Load } from './matmul.ts';

/** The runtime picks the split-k kernel where the base kernel has at most this many 32x32 tiles (about two per multiprocessor of a large GPU). */
export const SPLIT_MAX_TILES = 256;
const T = 32;
const TK = 16;
const SLICES = 4;
const LANES = ['x', 'y', 'z', 'w'];

export function lowerSplitMatmul(node: Node, epilogue?: MatmulEpilogue): string {
  const [a, b] = node.inputs.map((v) => v.type);
  const out = node.outputs[0].type;
  if (a.dtype !== 'f32' || b.dtype !== 'f32') throw new Error(`matmul is lowered for f32 only, found ${a.dtype} @ ${b.dtype}`);
  const batchRank = out.shape.length - 2;
  const ty = kernelStorageType(out.dtype);
  const access = matmulVectorAccess(node);
  const tr = matmulTransposes(node.attrs);
  const { k: kDim, n: nDim } = matmulDims(node);
  const vecOut = isConcrete(nDim) && nDim > 0 && nDim % 4 === 0 && isConcrete(kDim) && kDim > 0 && !epilogue;
  const SLICE = (T * TK) / 4; // vec4s of one slice's A tile (and of its B tile): 128

  const L: string[] = [];
  const trText = tr.a || tr.b ? ` (${[tr.a ? 'A stored [k, m]' : '', tr.b ? 'B stored [n, k]' : ''].filter((x) => x).join(', ')}: read transposed)` : '';
  L.push(`// matmul(f32) batch rank ${batchRank}, split k: ${T}x${T} output tiles, ${SLICES} slices of 64 invocations each taking every ${SLICES}th k step of ${TK} (4x4 register blocks), partial tiles summed in workgroup memory${trText}.`);
  if (epilogue) L.push(epilogue.comment);
  L.push('struct Params {', '  dims: vec4<u32>, // m, n, k, batch count', '  tiles: vec4<u32>, // tile columns, tile rows, total tiles');
  L.push(...matmulBatchFields(batchRank));
  L.push(...(epilogue?.fields ?? []), '}');
  L.push('@group(0) @binding(0) var<uniform> p: Params;');
  L.push(`@group(0) @binding(1) var<storage, read> a: array<${access.a ? 'vec4<f32>' : ty}>;`);
  L.push(`@group(0) @binding(2) var<storage, read> b: array<${access.b ? 'vec4<f32>' : ty}>;`);
  if (epilogue) L.push(...epilogue.declarations);
  else L.push(`@group(0) @binding(3) var<storage, read_write> out: array<${vecOut ? 'vec4<f32>' : ty}>;`);
  L.push(`// slice s: A tile at [s * ${SLICE}, +${SLICE}) ([${T} rows][${TK / 4} vec4s of k]), B tile at ${SLICES * SLICE} + s * ${SLICE} ([${TK} k][${T / 4} vec4s of columns]); then the partial blocks`);
  L.push(`var<workgroup> wmem: array<vec4<f32>, ${2 * SLICES * SLICE}>;`);
  L.push('');
  L.push(`@compute @workgroup_size(${64 * SLICES})`);
  L.push('fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {');
  L.push('  let t = wid.y * nwg.x + wid.x;');
  L.push('  if (t >= p.tiles.z) { return; }');
  L.push('  let m = p.dims.x;');
  L.push('  let n = p.dims.y;');
  L.push('  let k = p.dims.z;');
  L.push(`  let col0 = (t % p.tiles.x) * ${T}u;`);
  L.push('  let rest = t / p.tiles.x;');
  L.push(`  let row0 = (rest % p.tiles.y) * ${T}u;`);
  L.push('  let bi = rest / p.tiles.y;');
  L.push(...matmulBatchBases(batchRank));
  if (epilogue) L.push(...epilogue.prologue);
  L.push('  let s = li / 64u;');
  L.push('  let l = li % 64u;');
  L.push('  let tx = l % 8u;');
  L.push('  let ty = l / 8u;');
  L.push(`  let sa = s * ${SLICE}u;`);
  L.push(`  let sb = ${SLICES * SLICE}u + s * ${SLICE}u;`);
  for (let i = 0; i < 4; i++) L.push(`  var acc${i} = vec4<f32>(0.0);`);
  L.push(`  let steps = (k + ${SLICES * TK - 1}u) / ${SLICES * TK}u;`);
  L.push('  for (var st = 0u; st < steps; st++) {');
  L.push(`    let k0 = (st * ${SLICES}u + s) * ${TK}u;`);
  const load = (name: string, buf: string, base: string, row: string, rows: string, col: string, cols: string, vector: boolean) => {
    L.push(...vec4Load(name, buf, base, row, rows, col, cols, vector, '      ', true));
  };

  L.push(`    for (var e = l; e < ${SLICE}u; e += 64u) {`);
  if (!tr.a) {
    // A [m, k]: row e / 4 of the tile, its k 4 * (e % 4) .. + 3: tileA[row][k / 4]
    L.push(`      let ar = row0 + e / ${TK / 4}u;`);
    L.push(`      let ac = k0 + (e % ${TK / 4}u) * 4u;`);
    load('va', 'a', 'aBase', 'ar', 'm', 'ac', 'k', access.a);
    L.push('      wmem[sa + e] = va;');
  } else {
    // A^T [k, m]: k row e / 8 of the tile, its rows 4 * (e % 8) .. + 3, one lane each of four tileA vec4s
    L.push(`      let ak = e / ${T / 4}u;`);
    L.push(`      let ar = row0 + (e % ${T / 4}u) * 4u;`);
    L.push('      let akg = k0 + ak;');
    load('va', 'a', 'aBase', 'akg', 'k', 'ar', 'm', access.a);
    L.push(`      let ta = sa + (e % ${T / 4}u) * ${4 * (TK / 4)}u + ak / 4u;`);
    L.push('      let tl = ak % 4u;');
    for (let j = 0; j < 4; j++) L.push(`      wmem[ta${j > 0 ? ` + ${j * (TK / 4)}u` : ''}][tl] = va.${LANES[j]};`);
  }
  if (!tr.b) {
    // B [k, n]: k row e / 8 of the tile, its columns 4 * (e % 8) .. + 3: tileB[k][column / 4]
    L.push(`      let br = k0 + e / ${T / 4}u;`);
    L.push(`      let bc = col0 + (e % ${T / 4}u) * 4u;`);
    load('vb', 'b', 'bBase', 'br', 'k', 'bc', 'n', access.b);
    L.push('      wmem[sb + e] = vb;');
  } else {
    // B^T [n, k]: column e / 4 of the tile, its k 4 * (e % 4) .. + 3, one lane each of four tileB vec4s
    L.push(`      let bn = e / ${TK / 4}u;`);
    L.push(`      let bk = k0 + (e % ${TK / 4}u) * 4u;`);
    L.push('      let bng = col0 + bn;');
    load('vb', 'b', 'bBase', 'bng', 'n', 'bk', 'k', access.b);
    L.push(`      let tb = sb + (e % ${TK / 4}u) * ${4 * (T / 4)}u + bn / 4u;`);
    L.push('      let tbl = bn % 4u;');
    for (let j = 0; j < 4; j++) L.push(`      wmem[tb${j > 0 ? ` + ${j * (T / 4)}u` : ''}][tbl] = vb.${LANES[j]};`);
  }
  L.push('    }');
  L.push('    workgroupBarrier();');
  L.push(`    for (var q = 0u; q < ${TK / 4}u; q++) {`);
  for (let j = 0; j < 4; j++) L.push(`      let b${j} = wmem[sb + (q * 4u${j > 0 ? ` + ${j}u` : ''}) * ${T / 4}u + tx];`);
  for (let i = 0; i < 4; i++) {
    L.push(`      let a${i} = wmem[sa + (ty * 4u${i > 0 ? ` + ${i}u` : ''}) * ${TK / 4}u + q];`);
    for (let j = 0; j < 4; j++) L.push(`      acc${i} = fma(vec4<f32>(a${i}.${LANES[j]}), b${j}, acc${i});`);
  }
  L.push('    }');
  L.push('    workgroupBarrier();');
  L.push('  }');
  // the partial blocks: invocation li's row i at wmem[li * 4 + i]; slice 0 adds the others in order
  for (let i = 0; i < 4; i++) L.push(`  wmem[li * 4u + ${i}u] = acc${i};`);
  L.push('  workgroupBarrier();');
  L.push('  if (s == 0u) {');
  L.push('    let r0 = row0 + ty * 4u;');
  L.push('    let c0 = col0 + tx * 4u;');
  for (let i = 0; i < 4; i++) {
    L.push(`    let v${i} = ${Array.from({ length: SLICES }, (_, q) => `wmem[${q > 0 ? `${q * 256}u + ` : ''}l * 4u + ${i}u]`).reduce((x, y) => `(${x} + ${y})`)};`);
  }
  for (let i = 0; i < 4; i++) {
    const r = i === 0 ? 'r0' : `r0 + ${i}u`;
    if (vecOut) L.push(`    if (${r} < m && c0 < n) { out[(oBase + ${i === 0 ? r : `(${r})`} * n + c0) / 4u] = v${i}; }`);
    else {
      L.push(`    if (${r} < m) {`);
      for (let j = 0; j < 4; j++) {
        const c = j === 0 ? 'c0' : `c0 + ${j}u`;
        const rp = i === 0 ? r : `(${r})`;
        const st = epilogue ? `${epilogue.call}(oBase + ${rp} * n + ${c}, ${r}, ${c}, v${i}.${LANES[j]});` : `out[oBase + ${rp} * n + ${c}] = v${i}.${LANES[j]};`;
        L.push(`      if (${c} < n) { ${st} }`);
      }
      L.push('    }');
    }
  }
  L.push('  }');
  L.push('}', '');
  if (epilogue) L.push(...epilogue.functions);
  return L.join('\n');
}
