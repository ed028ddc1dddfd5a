// Code generation for fused_reduce: one kernel computes a row's reductions, the elementwise work before and after them, and its stores.
//
// The unit list (compiler/ops/fused-reduce.ts) becomes passes over each row. A register is either a row
// value (computed once per row: reductions, constants, and units whose operands do not vary along the
// row) or an element value (computed per element of the row). A reduction whose operand needs the
// results of k earlier passes runs in pass k; the element units it needs are recomputed inside that
// pass from the inputs (a softmax reads its row three times and writes it once, instead of writing
// and reading four intermediate tensors). A row value is computed as soon as the passes it needs are
// done; a whole-row output is stored in the first pass where its value is available, or in a final
// pass; a row output is stored once per row.
//
// The same two shapes as the unfused reduction (codegen/reduce.ts), chosen by the same rule, so sums
// add in the same order: one invocation per row folding sequentially (few elements per row, or many
// rows), or one workgroup of 256 per row folding strided elements and combining by a tree in
// workgroup memory. Every operand of a unit and of an accumulation passes through the exclusive or
// with a zero uniform word (codegen/fused.ts `opaque`), so the backend cannot contract or rewrite
// across what were separate kernels: the fused kernel gives the unfused kernels' bits.
//
// Inputs are read through strides over the row domain: each (input, unit shape) pair is a load with
// strides over the kept axes and, when it varies along the row, over the reduced axes; a load that
// does not vary along the row is read once per row.
//
// Uniform layout: `header` (x: rows, y: elements per row), `ez` (zeros for the opaque operands),
// `kshape` and `rshape` (the kept and reduced sizes), per load `ks{L}` and `rs{L}`, `fks` and `frs`
// (the whole-row outputs' strides, the row-major ones, by which a unit drawing random numbers also
// finds its element's flat index), `lo` (each load's first element) when an input is read through a
// view, per whole-row output stored into an in-place concat's slab its `oks{o}` and `ors{o}` and then
// `oo` (their offsets), then `c` (constants). Bindings: 0 the uniform, then the inputs (one read through
// several views bound once), then the outputs.
import type { DType, Node } from '../ir/types.ts';
import { type Dim, mul } from '../shapes/dim.ts';
import { getOp } from '../ops/registry.ts';
import { decodeFusedBody, decodeInputViews, decodeOutputViews, drawsRandom, FUSED_OP, type InputView, viewedInputTypes } from '../ops/fused.ts';
import { FUSED_REDUCE_OP, type RowClass, rowLayout, type RowUnit } from '../ops/fused-reduce.ts';
import { broadcastStrides, storageType, uvec } from './elementwise.ts';
import { constantWord, fusedBodyCode, opaque } from './fused.ts';
import { ceilDiv, firstPositions, type KernelPlan, padUniforms } from './kernel.ts';
import { compensatedAdd, cpuPerThreadRequires, MAX_F32_HELPER, PER_THREAD_WORKGROUP_SIZE, prefersPerThread, REDUCE_WORKGROUP_SIZE, rowIndexLines, rowLanes, rowLoopHead, SUBGROUP_BUILTINS, workgroupCombine } from './reduce.ts';

interface Load {
  readonly input: number;
  readonly key: string;
  /** Strides over every axis of the row domain (0 where the input is broadcast). */
  readonly strides: readonly Dim[];
  /** Whether it varies along the row (a nonzero stride on a reduced axis). */
  readonly varies: boolean;
  /** The element its row 0 starts from: a viewed input's view offset (ops/fused.ts), else 0. */
  readonly offset: Dim;
}

/** A register's WGSL name and where it lives: `row` once per row, `element` per element of a pass. */
interface Reg {
  readonly name: string;
  readonly dtype: DType;
  readonly element: boolean;
  /** The pass from which it can be computed (a row value: before that pass starts). */
  readonly ready: number;
}


/** The one dispatch of a fused_reduce node. */
export function fusedReducePlans(node: Node): KernelPlan[] {
  // a viewed input is read through its view (ops/fused.ts): the layout sees the view's shape
  const viewed = viewedInputTypes(node.inputs.map((v) => v.type), node.attrs, FUSED_REDUCE_OP);
  if (typeof viewed === 'string') throw new Error(viewed);
  const viewOf = new Map((decodeInputViews(node.attrs, node.inputs.length, FUSED_REDUCE_OP) as InputView[]).map((v) => [v.input, v]));
  const layout = rowLayout(viewed, node.attrs);
  if ('message' in layout) throw new Error(layout.message);
  const { full, axes, drop, units, regs: types, outputs } = layout;
  const rank = full.length;
  const kept = full.map((_, a) => a).filter((a) => !axes.includes(a));
  const nk = kept.length;
  const nr = axes.length;
  const rows = kept.reduce<Dim>((n, a) => mul(n, full[a]), 1);
  const perRow = axes.reduce<Dim>((n, a) => mul(n, full[a]), 1);
  const gpuPerThread = prefersPerThread(rows, perRow);
  const gpuLanes = gpuPerThread ? 1 : rowLanes(rows, perRow);
  const nIn = node.inputs.length;
  // an input that appears more than once (views of one buffer) is bound once, at its first position
  const first = firstPositions(node.inputs);
  const bound = node.inputs.flatMap((_, i) => (first[i] === i ? [i] : []));

  // ---- loads, registers and passes ------------------------------------------------------------------
  const loads: Load[] = [];
  /** Strides of `shape` (a view's own strides, when given) over every axis of the domain, broadcast to a unit of class `cls` (a dropped-axes row covers only the kept axes). */
  const stridesOver = (shape: readonly Dim[], cls: RowClass, own?: readonly Dim[]): Dim[] => {
    if (cls !== 'drop') return broadcastStrides(shape, full, FUSED_REDUCE_OP, own);
    const onKept = broadcastStrides(shape, drop, FUSED_REDUCE_OP, own);
    const strides = new Array<Dim>(rank).fill(0);
    kept.forEach((a, d) => (strides[a] = onKept[d]));
    return strides;
  };
  const loadOf = (input: number, cls: RowClass): number => {
    const view = viewOf.get(input);
    const strides = stridesOver(types[input].shape, cls, view?.strides);
    const key = `${input}:${JSON.stringify(strides)}`;
    let at = loads.findIndex((l) => l.key === key);
    if (at < 0) {
      at = loads.length;
      loads.push({ input, key, strides, varies: axes.some((a) => strides[a] !== 0), offset: view?.offset ?? 0 });
    }
    return at;
  };
  const regs: (Reg | undefined)[] = new Array(types.length);
  /** Per unit: its operands as load indices (an input) or registers. */
  const operands: { load?: number; reg?: number }[][] = [];
  const passOf = new Map<RowUnit, number>(); // reduction -> its pass
  let passes = 0;
  const unitOf: number[] = new Array<number>(types.length); // register -> the index of the unit that defines it
  for (const [j, u] of units.entries()) {
    // a reduction reads its operand along the whole row; other units read theirs broadcast to their own shape
    const ops = u.args.map((r) => (r < nIn ? { load: loadOf(r, u.kind === 'reduce' ? 'full' : u.cls) } : { reg: r }));
    operands.push(ops);
    let element = false;
    let ready = 0;
    for (const o of ops) {
      if (o.load !== undefined) element ||= loads[o.load].varies;
      else {
        element ||= regs[o.reg!]!.element;
        ready = Math.max(ready, regs[o.reg!]!.ready);
      }
    }
    // a unit that draws random numbers draws one per element (at fullIndex below), even from row-constant operands
    if (u.cls === 'full' && u.op === FUSED_OP && drawsRandom(u.attrs)) element = true;
    if (u.kind === 'reduce') {
      passOf.set(u, ready);
      passes = Math.max(passes, ready + 1);
      ready += 1;
      element = false;
    }
    if (u.kind === 'const') element = false;
    for (let k = 0; k < u.count; k++) {
      regs[u.first + k] = { name: u.kind === 'alias' ? regName(ops[0], regs) : `r${u.first + k}`, dtype: types[u.first + k].dtype, element, ready };
      unitOf[u.first + k] = j;
    }
  }
  const outs = outputs.map((r, o) => ({ r, o, dtype: types[r].dtype, whole: units.find((u) => r >= u.first && r < u.first + u.count)!.cls === 'full' }));
  // a whole-row output is stored in the first pass where it is ready (a final pass when none is left)
  const storePass = (r: number) => Math.min(regs[r]!.ready, passes);
  const finalStores = outs.some((x) => x.whole && storePass(x.r) === passes);
  const wholeOutputs = outs.some((x) => x.whole);
  // a unit that draws random numbers draws at its element's flat index: over the whole domain fb + Σ j_d * frs_d
  // (row-major strides), over the rows (with or without their size-1 axes) the row's index o
  const draws = units.some((u) => u.cls === 'full' && u.op === FUSED_OP && drawsRandom(u.attrs));
  const fullIndex = `(fb + ${axes.map((_, d) => `j${d} * ${uvec('frs', d)}`).join(' + ')})`;

  // ---- uniform words ---------------------------------------------------------------------------------
  const words: Dim[] = [rows, perRow, 0, 0, 0, 0, 0, 0];
  const fields = ['  header: vec4<u32>, // x: rows, y: elements per row', '  ez: vec4<u32>, // zeros: the opaque operands'];
  const kk = Math.ceil(nk / 4);
  const kr = Math.ceil(nr / 4);
  if (nk > 0) {
    fields.push(`  kshape: array<vec4<u32>, ${kk}>,`);
    words.push(...padUniforms(kept.map((a) => full[a])));
  }
  fields.push(`  rshape: array<vec4<u32>, ${kr}>,`);
  words.push(...padUniforms(axes.map((a) => full[a])));
  loads.forEach((l, i) => {
    if (nk > 0) {
      fields.push(`  ks${i}: array<vec4<u32>, ${kk}>, // input ${l.input}: strides over the kept axes`);
      words.push(...padUniforms(kept.map((a) => l.strides[a])));
    }
    if (l.varies) {
      fields.push(`  rs${i}: array<vec4<u32>, ${kr}>, // input ${l.input}: strides along the row`);
      words.push(...padUniforms(axes.map((a) => l.strides[a])));
    }
  });
  if (wholeOutputs || draws) {
    const own = stridesOver(full, 'full');
    if (nk > 0) {
      fields.push(`  fks: array<vec4<u32>, ${kk}>, // whole-row outputs: strides over the kept axes`);
      words.push(...padUniforms(kept.map((a) => own[a])));
    }
    fields.push(`  frs: array<vec4<u32>, ${kr}>, // whole-row outputs: strides along the row`);
    words.push(...padUniforms(axes.map((a) => own[a])));
  }
  if (viewOf.size > 0) {
    fields.push(`  lo: array<vec4<u32>, ${Math.ceil(loads.length / 4)}>, // each load's first element (a viewed input's offset)`);
    words.push(...padUniforms(loads.map((l) => l.offset)));
  }
  // whole-row outputs stored into an in-place concat's slab (ops/fused.ts's out_views): their own strides and offset
  const outViews = decodeOutputViews(node.attrs, node.outputs.map((v) => v.type), FUSED_REDUCE_OP);
  if (typeof outViews === 'string') throw new Error(outViews);
  const outViewOf = new Map(outViews.map((v, j) => [v.output, j]));
  for (const v of outViews) {
    if (!outs[v.output].whole) throw new Error(`${FUSED_REDUCE_OP}: output ${v.output} is a row value, which has no slab`);
    if (nk > 0) {
      fields.push(`  oks${v.output}: array<vec4<u32>, ${kk}>, // output ${v.output}: strides in its slab over the kept axes`);
      words.push(...padUniforms(kept.map((a) => v.strides[a])));
    }
    fields.push(`  ors${v.output}: array<vec4<u32>, ${kr}>, // output ${v.output}: strides in its slab along the row`);
    words.push(...padUniforms(axes.map((a) => v.strides[a])));
  }
  if (outViews.length > 0) {
    fields.push(`  oo: array<vec4<u32>, ${Math.ceil(outViews.length / 4)}>, // viewed outputs' offsets`);
    words.push(...padUniforms(outViews.map((v) => v.offset)));
  }

  // ---- unit code ---------------------------------------------------------------------------------------
  const constWords: Dim[] = [];
  const constAt = new Map<number, number>(); // unit -> its first constant word (a unit recomputed in several passes reuses them)
  const helpers = new Map<string, string>();
  if (units.some((u) => u.kind === 'reduce' && u.op === 'reduce_max')) helpers.set('dlc_max_f32', MAX_F32_HELPER);
  const operandName = (o: { load?: number; reg?: number }) => (o.load !== undefined ? `l${o.load}` : regs[o.reg!]!.name);
  const operandDtype = (o: { load?: number; reg?: number }) => (o.load !== undefined ? types[loads[o.load].input].dtype : regs[o.reg!]!.dtype);
  /** The statements that define a unit's registers (not for reductions). */
  const unitCode = (j: number, indent: string): string[] => {
    const u = units[j];
    const ops = operands[j];
    if (u.kind === 'alias') return [];
    const first = constAt.get(j) ?? constWords.length;
    if (u.kind === 'const') {
      const dtype = types[u.first].dtype;
      const c = constantWord(u.attrs.value, dtype, uvec('c', first));
      if (!constAt.has(j)) constWords.push(c.word);
      constAt.set(j, first);
      return [`${indent}let r${u.first} = ${c.read};`];
    }
    if (u.op === FUSED_OP) {
      const body = decodeFusedBody(u.attrs);
      if (typeof body === 'string') throw new Error(body);
      const code = fusedBodyCode(body, ops.map(operandDtype), 'p.ez', { inputNames: ops.map(operandName), prefix: `u${j}_`, constBase: first, elementIndex: u.cls === 'full' ? fullIndex : 'o' });
      if (!constAt.has(j)) constWords.push(...code.constWords);
      constAt.set(j, first);
      for (const [h, text] of code.helpers) helpers.set(h, text);
      return [...code.stmts.map((s) => indent + s.trimStart()), ...body.outputs.map((r, k) => `${indent}let r${u.first + k} = ${code.names[r]};`)];
    }
    const spec = getOp(u.op)?.lower;
    if (!spec || spec.kind !== 'elementwise' || !spec.expr) throw new Error(`${FUSED_REDUCE_OP}: ${u.op} has no elementwise lowering`);
    const dtypes = ops.map(operandDtype);
    const expr = spec.expr(ops.map((o, pos) => opaque(operandName(o), dtypes[pos], pos, 'p.ez')), u.attrs, types[u.first].dtype, dtypes);
    for (const [h, text] of Object.entries(spec.helpers ?? {})) if (new RegExp(`\\b${h}\\(`).test(expr)) helpers.set(h, text);
    return [`${indent}let r${u.first} = ${expr};`];
  };
  /** Loads, then the element units the given operands need, in unit order. */
  const elementCode = (needed: readonly { load?: number; reg?: number }[], indent: string): string[] => {
    const want = new Set<number>(); // unit indices
    const wantLoads = new Set<number>();
    const visit = (r: number) => {
      const reg = regs[r]!;
      if (!reg.element) return;
      const j = unitOf[r];
      if (want.has(j)) return;
      want.add(j);
      for (const o of operands[j]) {
        if (o.load !== undefined) {
          if (loads[o.load].varies) wantLoads.add(o.load);
        } else visit(o.reg!);
      }
    };
    for (const o of needed) {
      if (o.reg !== undefined) visit(o.reg);
      else if (loads[o.load!].varies) wantLoads.add(o.load!);
    }
    const lines: string[] = [];
    for (const l of [...wantLoads].sort((a, b) => a - b)) lines.push(`${indent}let l${l} = ${load(l, `b${l} + ${axes.map((_, d) => `j${d} * ${uvec(`rs${l}`, d)}`).join(' + ')}`)};`);
    for (const j of [...want].sort((a, b) => a - b)) lines.push(...unitCode(j, indent));
    return lines;
  };
  const load = (l: number, at: string) => {
    const x = `in${first[loads[l].input]}[${at}]`;
    return types[loads[l].input].dtype === 'bool' ? `(${x} != 0u)` : x;
  };
  const stored = (r: number) => (types[r].dtype === 'bool' ? `select(0u, 1u, ${regs[r]!.name})` : regs[r]!.name);

  // ---- the shader (and its subgroup variant) ------------------------------------------------------
  /** The body of main (one row per invocation, or `lanes` per row); with `subgroups`, sums combine across the workgroup with subgroupAdd. */
  const mainBody = (subgroups: boolean, perThread: boolean, lanes: number): string[] => {
    const wg = perThread ? PER_THREAD_WORKGROUP_SIZE : REDUCE_WORKGROUP_SIZE;
    const B: string[] = [];
    B.push(...rowIndexLines(wg, lanes, perThread));
    if (nk > 0) {
      B.push('  var orem = o;');
      for (let d = nk - 1; d > 0; d--) B.push(`  let k${d} = orem % ${uvec('kshape', d)};`, `  orem = orem / ${uvec('kshape', d)};`);
      B.push('  let k0 = orem;');
    }
    const rowBase = (arr: string) => (nk > 0 ? kept.map((_, d) => `k${d} * ${uvec(arr, d)}`).join(' + ') : '0u');
    loads.forEach((l, i) => {
      B.push(`  let b${i} = ${viewOf.size > 0 ? `${uvec('lo', i)} + ` : ''}${rowBase(`ks${i}`)};`);
      if (!l.varies) B.push(`  let l${i} = ${load(i, `b${i}`)};`);
    });
    if (wholeOutputs || draws) B.push(`  let fb = ${rowBase('fks')};`);
    outViews.forEach((v, j) => B.push(`  let ob${v.output} = ${uvec('oo', j)} + ${rowBase(`oks${v.output}`)};`));
    if (units.some((u) => u.kind === 'reduce' && u.op === 'reduce_max')) B.push('  var ninf_bits = 0xff800000u;');
    const emitted = new Set<number>();
    const rowUnits = (upTo: number) => {
      units.forEach((u, j) => {
        if (emitted.has(j) || u.kind === 'reduce') return;
        const r = regs[u.first]!;
        if (r.element || r.ready > upTo) return;
        emitted.add(j);
        B.push(...unitCode(j, '  '));
      });
  };
  const indexLines = (indent: string) => {
    const L = [`${indent}var jrem = j;`];
    for (let d = nr - 1; d > 0; d--) L.push(`${indent}let j${d} = jrem % ${uvec('rshape', d)};`, `${indent}jrem = jrem / ${uvec('rshape', d)};`);
    L.push(`${indent}let j0 = jrem;`);
    return L;
  };
  const storeLines = (pass: number, indent: string) =>
    outs
      .filter((x) => x.whole && storePass(x.r) === pass)
      .map((x) => {
        const [base, strides] = outViewOf.has(x.o) ? [`ob${x.o}`, `ors${x.o}`] : ['fb', 'frs'];
        return `${indent}out${x.o}[${base} + ${axes.map((_, d) => `j${d} * ${uvec(strides, d)}`).join(' + ')}] = ${stored(x.r)};`;
      });
  const loopHead = rowLoopHead(lanes, perThread);
  for (let pass = 0; pass <= passes; pass++) {
    rowUnits(pass);
    const reds = units.filter((u) => u.kind === 'reduce' && passOf.get(u) === pass);
    const stores = storeLines(pass, '    ');
    if (reds.length === 0 && stores.length === 0) continue;
    for (const u of reds) B.push(`  var a${u.first} = ${u.op === 'reduce_max' ? 'bitcast<f32>(ninf_bits)' : '0.0'};`, ...(u.op === 'reduce_max' ? [] : [`  var c${u.first} = 0.0;`]));
    B.push(loopHead, ...indexLines('    '));
    const redOperand = (u: RowUnit) => operands[unitOf[u.first]][0];
    B.push(...elementCode([...reds.map(redOperand), ...outs.filter((x) => x.whole && storePass(x.r) === pass).map((x) => ({ reg: x.r }))], '    '));
    for (const u of reds) {
      const v = opaque(operandName(redOperand(u)), 'f32', 0, 'p.ez');
      if (u.op === 'reduce_max') B.push(`    a${u.first} = dlc_max_f32(a${u.first}, ${v});`);
      else B.push(...compensatedAdd(`a${u.first}`, `c${u.first}`, v, '    ', (e) => opaque(e, 'f32', 1, 'p.ez')));
    }
    B.push(...stores, '  }');
    for (const u of reds) if (u.op !== 'reduce_max') B.push(`  a${u.first} = a${u.first} - c${u.first};`);
    for (const u of reds) {
      if (!perThread) {
        const max = u.op === 'reduce_max';
        B.push(...workgroupCombine(`a${u.first}`, (a, b) => (max ? `dlc_max_f32(${a}, ${b})` : `${a} + ${b}`), wg, subgroups && !max, lanes));
      }
      B.push(`  let r${u.first} = a${u.first};`);
    }
  }
  rowUnits(passes);
  const rowStores = outs.filter((x) => !x.whole).map((x) => `out${x.o}[o] = ${stored(x.r)};`);
  if (rowStores.length > 0) B.push(...(perThread ? rowStores.map((s) => `  ${s}`) : ['  if (lane == 0u && has_row) {', ...rowStores.map((s) => `    ${s}`), '  }']));
  return B;
  };

  /** One variant's bodies and grid: a row per invocation, or `lanes` invocations per row (bodies built before the constants are counted). */
  const variant = (perThread: boolean, lanes: number) => {
    const wg = perThread ? PER_THREAD_WORKGROUP_SIZE : REDUCE_WORKGROUP_SIZE;
    const subgroups = !perThread && lanes === wg && units.some((u) => u.kind === 'reduce' && u.op === 'reduce_sum');
    return {
      perThread,
      lanes,
      body: mainBody(false, perThread, lanes),
      subgroupBody: subgroups ? mainBody(true, perThread, lanes) : undefined,
      workgroups: perThread ? ceilDiv(rows, wg) : lanes === wg ? rows : ceilDiv(rows, wg / lanes),
    };
  };
  const gpu = variant(gpuPerThread, gpuLanes);
  // CPU adapters fold each row in one invocation (in order, as reduce_sum's CPU variant does) once there are enough rows
  const cpuRequires = cpuPerThreadRequires(gpuPerThread, rows);
  const cpu = cpuRequires === undefined ? undefined : variant(true, 1);

  if (constWords.length > 0) fields.push(`  c: array<vec4<u32>, ${Math.ceil(constWords.length / 4)}>, // constants`);
  if (constWords.length > 0) words.push(...padUniforms(constWords));
  const shader = (B: string[], subgroups: boolean, perThread: boolean, lanes: number): string => {
    const wg = perThread ? PER_THREAD_WORKGROUP_SIZE : REDUCE_WORKGROUP_SIZE;
    const L: string[] = [];
    if (subgroups) L.push('enable subgroups;');
    const what = units.map((u) => u.op).join(', ');
    L.push(`// ${FUSED_REDUCE_OP} over axes [${axes.join(', ')}] of rank ${rank}: ${what}; ${perThread ? 'one invocation per row' : `${lanes} invocations per row (${wg / lanes} per workgroup of ${wg})`}, ${passes} pass${passes === 1 ? '' : 'es'}${finalStores ? ' and a store pass' : ''}.`);
    L.push('struct Params {', ...fields, '}');
    L.push('@group(0) @binding(0) var<uniform> p: Params;');
    bound.forEach((i, b) => L.push(`@group(0) @binding(${b + 1}) var<storage, read> in${i}: array<${storageType(node.inputs[i].type.dtype)}>;`));
    outs.forEach((x) => L.push(`@group(0) @binding(${bound.length + 1 + x.o}) var<storage, read_write> out${x.o}: array<${storageType(x.dtype)}>;`));
    if (!perThread) L.push(`var<workgroup> sv: array<f32, ${wg}>;`);
    L.push('', ...[...helpers.values()].flatMap((h) => [h, '']));
    L.push(`@compute @workgroup_size(${wg})`);
    L.push('fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,');
    L.push(`        @builtin(local_invocation_index) lid: u32${subgroups ? SUBGROUP_BUILTINS : ''}) {`);
    L.push(...B, '}', '');
    return L.join('\n');
  };
  return [{
    op: FUSED_REDUCE_OP,
    wgsl: shader(gpu.body, false, gpu.perThread, gpu.lanes),
    uniforms: padUniforms(words),
    workgroups: gpu.workgroups,
    ...(gpu.subgroupBody ? { subgroupWgsl: shader(gpu.subgroupBody, true, gpu.perThread, gpu.lanes) } : {}),
    ...(cpu ? { cpuVariants: [{ name: 'per-thread', wgsl: shader(cpu.body, false, true, 1), workgroups: cpu.workgroups, requires: cpuRequires! }] } : {}),
    ...(bound.length < nIn ? { inputs: bound } : {}),
  }];
}

function regName(o: { load?: number; reg?: number }, regs: readonly (Reg | undefined)[]): string {
  if (o.reg === undefined) throw new Error(`${FUSED_REDUCE_OP}: an alias of an input`);
  return regs[o.reg]!.name;
}
