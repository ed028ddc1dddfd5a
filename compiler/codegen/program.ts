// Lowers a model's graphs (predict, evaluate, training steps) into the runtime's program: buffers, dispatches, updates.
//
// Each graph becomes a list of dispatches over numbered buffers. Parameters and state buffers belong
// to the model and are shared by all its graphs (a training step writes them, predict reads them).
// Every node output gets its own buffer, except that reshape and stop_gradient alias their operand's
// buffer (a row-major buffer already is its reshape) and an in-place concat's operands are slabs of its
// result's buffer (optimize/concat-in-place.ts: their producers store them there, and the concat has no
// dispatch); then memory.ts lets temporaries share buffers. New
// parameter and state values are copied over the old ones after the step's last dispatch, so every
// dispatch of a step sees the values from the start of the step.
import { GraphEditor } from '../ir/editor.ts';
import { markOnceKernels } from './once.ts';
import type { Span } from '../../grammar/ast.ts';
import type {
  ArenaRef, BufferDecl, ConstraintDecl, DType as RuntimeDType, GraphProgram, IndexDecl, InitDecl, InputDecl, KernelDecl, ModelProgram, ParamDecl, StateDecl, TensorDecl, TrainingDecl,
} from '../../runtime/program.ts';
import { diagnostic, type Diagnostic } from '../diagnostics/diagnostic.ts';
import { SourceText } from '../diagnostics/source.ts';
import type { Graph, InitSpec, Node, TensorType, Value } from '../ir/types.ts';
import { indexInputs, type IndexUse } from '../ir/index-inputs.ts';
import { inputDependencies, type InputDependencies } from '../ir/input-dependencies.ts';
import { dce } from '../optimize/index.ts';
import { fuseGraph } from '../optimize/fusion.ts';
import { metricTotals, TOTAL_PREFIX } from '../train/metric-totals.ts';
import { inPlaceNodeOf, isInPlace } from '../optimize/concat-in-place.ts';
import { fuseUpdates, type TempArena, type UpdateFusion } from '../optimize/fuse-updates.ts';
import { FUSED_FOREACH_OP, foreachOwnInputs, foreachSpan, inPlaceOutputs } from '../ops/fused-foreach.ts';
import { freeVars, isConcrete, shapeToString } from '../shapes/dim.ts';
import { type KernelPlan, memoLowerNode } from './kernel.ts';
import { planModelMemory } from './memory.ts';
import { sizeExpr } from './size-expr.ts';
import { optimize } from '../optimize/index.ts';
import { timeStage } from '../stage-times.ts';

/** WebGPU's default maxStorageBufferBindingSize: the largest tensor one binding can hold. */
export const DEFAULT_MAX_BINDING_BYTES = 134217728;

/** Ops whose output is their operand's bytes unchanged: they share its buffer. */
const ALIASING_OPS = new Set(['reshape', 'stop_gradient']);

export interface ModelGraphs {
  readonly file: string;
  readonly source: string;
  /** The text of other files nodes may come from (the stdlib, imported modules), for line numbers. */
  readonly otherSources?: ReadonlyMap<string, string>;
  /** The training variant's forward graph: its parameter order fixes the initializer streams. */
  readonly forward: Graph;
  readonly evaluation: Graph;
  /**
   * The evaluation graph before the optimization passes, where metric totals are found (stacking the
   * unrolled steps' matmuls into one over [T * B, ...] rows hides which values are the batch's rows).
   */
  readonly unoptimizedEvaluation?: Graph;
  readonly steps: readonly Graph[];
  /** Per step, the graph finishing the sums over the batch that step outputs (`#total<k>`) into its losses and metrics, over an epoch. */
  readonly stepTotals?: readonly (Graph | undefined)[];
  readonly training?: TrainingDecl;
}

function runtimeDType(t: TensorType, what: string): RuntimeDType {
  if (t.dtype === 'f16') throw new LoweringError(`${what} is f16, which needs the shader-f16 feature and is not lowered yet`);
  return t.dtype;
}

class LoweringError extends Error {}

function initDecl(init: InitSpec, stream: number): InitDecl {
  return { kind: init.kind, options: init.options, stream };
}

function concreteShape(t: TensorType, what: string): number[] {
  return t.shape.map((d) => {
    if (!isConcrete(d)) throw new LoweringError(`${what} has the symbolic shape ${shapeToString(t.shape)}; parameters and state need concrete sizes`);
    return d;
  });
}

/** The predict graph: the evaluation graph with only the declared outputs, and only the inputs they need. */
export function predictGraph(evaluation: Graph): Graph {
  const pruned = dce({ ...evaluation, losses: new Map(), metrics: new Map() });
  const used = new Set<number>();
  for (const n of pruned.nodes) for (const v of n.inputs) used.add(v.id);
  for (const v of pruned.outputs.values()) used.add(v.id);
  const graph = { ...pruned, name: `${evaluation.name}.predict`, inputs: pruned.inputs.filter((i) => used.has(i.value.id)) };
  // random ops in predict (categorical, random_normal: a policy's actions, a generator's samples) draw
  // fresh values on every call: the key advances by one per call, as a training step's does
  const key = graph.state.find((s) => s.path === 'rng.key');
  if (!key || !graph.nodes.some((n) => n.inputs.some((v) => v.id === key.value.id))) return graph;
  const editor = new GraphEditor(graph, key.span);
  editor.stateUpdates.set('rng.key', editor.op('add', [key.value, editor.scalar(1, 'u32')]));
  return editor.finish();
}

/** Where the arenas of compiler/optimize/fuse-updates.ts put a graph's tensors: model arenas by path, the graph's own temporary arenas. */
interface GraphArenas {
  readonly model: ReadonlyMap<string, ArenaRef>;
  readonly temps: readonly TempArena[];
}

function lowerGraph(g: Graph, name: string, position: (span: Span) => { line: number; column: number }, shaders: Map<string, number>, lower: (node: Node) => readonly KernelPlan[], arenas?: GraphArenas, dependencies?: InputDependencies): GraphProgram {
  const buffers: BufferDecl[] = [];
  const bufferOf = new Map<number, number>();
  const add = (v: Value, decl: BufferDecl) => {
    bufferOf.set(v.id, buffers.length);
    buffers.push(decl);
  };
  for (const p of g.params) add(p.value, { kind: 'param', path: p.path });
  const oldValueOf = new Map<number, Value>([...g.params, ...g.state].flatMap((x) => (x.update ? [[x.update.id, x.value] as [number, Value]] : [])));
  for (const s of g.state) add(s.value, { kind: 'state', path: s.path });
  const inputs: Record<string, number> = {};
  for (const i of g.inputs) {
    inputs[i.name] = buffers.length;
    add(i.value, { kind: 'input', name: i.name, dtype: runtimeDType(i.value.type, `input ${i.name}`), shape: i.value.type.shape.map(sizeExpr) });
  }
  // after the nodes' buffers (numbered as without arenas): each temporary arena, whose members are views
  // of it, then the arena ranges fused_foreach kernels bind
  // an in-place concat's operands are slabs of its result's buffer, which the first of their producers allocates
  const slabOf = inPlaceNodeOf(g.nodes);
  const ownBuffers = (n: Node) => (ALIASING_OPS.has(n.op) ? 0 : isInPlace(n) ? 1 : n.outputs.length - inPlaceOutputs(n).size - n.outputs.filter((v) => slabOf.has(v.id)).length);
  const arenaBase = buffers.length + g.nodes.reduce((a, n) => a + ownBuffers(n), 0);
  const tail: BufferDecl[] = [];
  const viewOf = new Map<number, { buffer: number; offset: number }>();
  for (const a of arenas?.temps ?? []) {
    for (const m of a.members) viewOf.set(m.key, { buffer: arenaBase + tail.length, offset: m.offset });
    tail.push({ kind: 'temp', dtype: runtimeDType({ dtype: a.dtype, shape: [] }, 'an arena'), shape: [a.size] });
  }
  const spans = new Map<string, number>();
  const spanOf = (b: number, size: number): number => {
    const d = buffers[b];
    const ref = d.kind === 'param' || d.kind === 'state' ? arenas?.model.get(d.path) : undefined;
    let decl: BufferDecl;
    if (ref) decl = { kind: 'arena', arena: ref.arena, offset: ref.offset, size };
    else if (d.kind === 'temp' && d.view) decl = { kind: 'temp', dtype: d.dtype, shape: [size], view: d.view };
    else throw new Error(`internal: ${FUSED_FOREACH_OP} binds buffer ${b}, which is in no arena`);
    const key = JSON.stringify(decl);
    let at = spans.get(key);
    if (at === undefined) {
      spans.set(key, (at = arenaBase + tail.length));
      tail.push(decl);
    }
    return at;
  };
  const kernels: KernelDecl[] = [];
  for (const node of g.nodes) {
    if (ALIASING_OPS.has(node.op)) {
      bufferOf.set(node.outputs[0].id, bufferOf.get(node.inputs[0].id)!);
      continue;
    }
    // a fused_foreach's in-place outputs are the buffers of the parameters or state they are new values of
    const overwrites = inPlaceOutputs(node);
    const temp = (v: Value) => {
      const view = viewOf.get(v.id);
      add(v, { kind: 'temp', dtype: runtimeDType(v.type, `a value of ${node.op}`), shape: v.type.shape.map(sizeExpr), ...(v.name ? { name: v.name } : {}), ...(view ? { view } : {}) });
    };
    for (const [k, v] of node.outputs.entries()) {
      if (overwrites.has(k)) {
        const old = oldValueOf.get(v.id);
        if (!old) throw new LoweringError(`${node.op} writes output ${k} in place, but it is no parameter's or state's new value`);
        bufferOf.set(v.id, bufferOf.get(old.id)!);
        continue;
      }
      const whole = slabOf.get(v.id)?.outputs[0];
      if (whole) {
        if (!bufferOf.has(whole.id)) temp(whole);
        bufferOf.set(v.id, bufferOf.get(whole.id)!);
        continue;
      }
      if (isInPlace(node) && bufferOf.has(v.id)) continue;
      temp(v);
    }
    // a fused_foreach binds, for member 0's own inputs and outputs, the arena ranges that cover its span
    const span = node.op === FUSED_FOREACH_OP ? foreachSpan(node) : 0;
    const own = new Set(span > 0 ? foreachOwnInputs(node) : []);
    const bindIn = (i: number): number => (own.has(i) ? spanOf(bufferOf.get(node.inputs[i].id)!, span) : bufferOf.get(node.inputs[i].id)!);
    const bindOut = (i: number): number => (span > 0 ? spanOf(bufferOf.get(node.outputs[i].id)!, span) : bufferOf.get(node.outputs[i].id)!);
    let plans;
    try {
      plans = lower(node);
    } catch (e) {
      throw new LoweringError(`${node.op} cannot be lowered: ${(e as Error).message}`);
    }
    const pos = position(node.span);
    // standard-library code: the user's call it ran under
    const site = node.span.site;
    const callerAt = site ? position(site) : undefined;
    const caller = site && callerAt ? { caller: { file: site.file, line: callerAt.line, col: callerAt.column } } : {};
    for (const plan of plans) {
      const intern = (wgsl: string): number => {
        let at = shaders.get(wgsl);
        if (at === undefined) shaders.set(wgsl, (at = shaders.size));
        return at;
      };
      kernels.push({
        op: plan.op,
        shader: intern(plan.wgsl),
        ...(plan.cpuWgsl !== undefined ? { cpuShader: intern(plan.cpuWgsl) } : {}),
        ...(plan.cpuVariants && plan.cpuVariants.length > 0
          ? {
              cpuVariants: plan.cpuVariants.map((v) => ({
                name: v.name,
                shader: intern(v.wgsl),
                workgroups: sizeExpr(v.workgroups),
                ...(v.requires !== undefined ? { requires: sizeExpr(v.requires) } : {}),
                ...(v.minSubgroupSize !== undefined ? { minSubgroupSize: v.minSubgroupSize } : {}),
              })),
            }
          : {}),
        ...(plan.subgroupWgsl !== undefined ? { subgroupShader: intern(plan.subgroupWgsl) } : {}),
        ...(plan.wide && plan.wide.length > 0 ? { wide: plan.wide.map((w) => ({ name: w.name, shader: intern(w.wgsl), workgroups: sizeExpr(w.workgroups), minWorkgroups: w.minWorkgroups, ...(w.maxBaseWorkgroups !== undefined ? { maxBaseWorkgroups: w.maxBaseWorkgroups } : {}) })) } : {}),
        inputs: (plan.inputs ?? node.inputs.map((_, i) => i)).map(bindIn),
        outputs: (plan.outputs ?? node.outputs.map((_, i) => i)).map(bindOut),
        uniforms: plan.uniforms.map(sizeExpr),
        workgroups: sizeExpr(plan.workgroups),
        source: { file: node.span.file, line: pos.line, col: pos.column, ...caller },
      });
    }
  }
  if (buffers.length !== arenaBase) throw new Error('internal: the buffers of a graph are miscounted');
  buffers.push(...tail);
  const outputs: Record<string, number> = {};
  for (const map of [g.outputs, g.losses, g.metrics]) for (const [k, v] of map) outputs[k] = bufferOf.get(v.id)!;
  const updates: { target: number; source: number }[] = [];
  for (const x of [...g.params, ...g.state]) {
    if (!x.update) continue;
    const target = bufferOf.get(x.value.id)!;
    const source = bufferOf.get(x.update.id)!;
    if (source !== target) updates.push({ target, source });
  }
  const constraints: ConstraintDecl[] = g.constraints.map((c) => ({ op: c.op, left: sizeExpr(c.left), right: sizeExpr(c.right), text: c.text }));
  return markOnceKernels({ name, buffers, kernels, inputs, outputs, updates, constraints, ...(dependencies ? { dependencies } : {}) });
}

/** Tensors of known size past the binding limit, as E0401 diagnostics naming each (also run by `dlc check`). */
export function bindingLimitDiagnostics(graphs: readonly Graph[], limit: number, file: string): Diagnostic[] {
  const seen = new Set<number>();
  const out: Diagnostic[] = [];
  for (const g of graphs) {
    // a parameter declared in the stdlib is reported at the user's layer that owns it
    const userSpan = (path: string, span: Span): Span =>
      span.file === file ? span : g.layerCalls.filter((c) => c.span.file === file && path.startsWith(`${c.path}.`)).sort((a, b) => b.path.length - a.path.length)[0]?.span ?? span;
    const all: { value: Value; span: Span; what: string }[] = [
      ...g.params.map((p) => ({ value: p.value, span: userSpan(p.path, p.span), what: `parameter ${p.path}` })),
      ...g.inputs.map((i) => ({ value: i.value, span: i.span, what: `input ${i.name}` })),
      ...g.nodes.flatMap((n) => n.outputs.map((v) => ({ value: v, span: n.span, what: v.name ? `\`${v.name}\`` : `the result of ${n.op}` }))),
    ];
    for (const { value, span, what } of all) {
      if (seen.has(value.id) || !value.type.shape.every(isConcrete)) continue;
      seen.add(value.id);
      const bytes = (value.type.shape as number[]).reduce((a, b) => a * b, 1) * (value.type.dtype === 'f16' ? 2 : 4);
      if (bytes > limit) {
        out.push(diagnostic('E0401', `${what} of type ${value.type.dtype}${shapeToString(value.type.shape)} takes ${bytes.toLocaleString('en-US')} bytes, over the storage binding limit of ${limit.toLocaleString('en-US')} bytes`, span, { label: 'allocated here', help: 'make the tensor smaller or split it into several' }));
        if (out.length >= 20) return out;
      }
    }
  }
  return out;
}

/**
 * The runtime program of one model. Parameter k of the forward graph draws from initializer stream k
 * and state buffer k (in first-seen order across the graphs) from stream 0x10000 + k, like the
 * interpreter's `initialize`, so the GPU and the reference start from the same values.
 */
/** An input's declaration with the uses of its values as indices (ir/index-inputs.ts), each (bound, what) once. */
function withIndices(decl: TensorDecl, uses: readonly IndexUse[], position: (span: Span) => { line: number; column: number }): InputDecl {
  const seen = new Set<string>();
  const indices: IndexDecl[] = [];
  // a one_hot of labels a gather also reads at the same bound adds nothing to say (the metrics' one_hot beside cross_entropy's gather)
  // a table's rows first (an embedding says more than the loss's gather of the same tokens), one_hot last
  const rank = { take: 0, take_along_axis: 1, one_hot: 2 } as const;
  const own = uses.filter((u) => u.input === decl.name).sort((a, b) => rank[a.op] - rank[b.op]);
  const gathered = new Set(own.filter((u) => u.op !== 'one_hot').map((u) => JSON.stringify(sizeExpr(u.bound))));
  for (const u of own) {
    if (u.op === 'one_hot' && gathered.has(JSON.stringify(sizeExpr(u.bound)))) continue;
    const of = u.of === undefined ? u.type : `\`${u.of}\``;
    const what = u.op === 'one_hot' ? `the classes of one_hot(..., ${String(u.bound)})` : u.op === 'take' && u.axis === 0 ? `the rows of ${of}` : `axis ${u.axis} of ${of}`;
    const bound = sizeExpr(u.bound);
    const key = `${JSON.stringify(bound)} ${what} ${u.ignore ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const pos = position(u.span);
    // standard-library code (cross_entropy's gather): the user's call it ran under too
    const site = u.span.site;
    const callerAt = site ? position(site) : undefined;
    const caller = site && callerAt ? { caller: { file: site.file, line: callerAt.line, col: callerAt.column } } : {};
    indices.push({ bound, what, source: { file: u.span.file, line: pos.line, col: pos.column, ...caller }, ...(u.ignore !== undefined ? { ignore: u.ignore } : {}) });
  }
  return indices.length === 0 ? decl : { ...decl, indices };
}

export function lowerModel(
  m: ModelGraphs,
  options: {
    maxBindingBytes?: number;
    planMemory?: boolean;
    /** Elementwise fusion (default true; see optimize/fuse.ts). */ fuse?: boolean;
    /** Optimizer updates over arenas (default: as `fuse`; see optimize/fuse-updates.ts). */ fuseUpdates?: boolean;
    /** The storage offset alignment arena ranges are placed for, in bytes (default 256). */ arenaAlignment?: number;
  } = {},
): { program?: ModelProgram; diagnostics: Diagnostic[] } {
  const fused = (g: Graph): Graph => (options.fuse === false ? g : timeStage('fuse', () => fuseGraph(g).graph));
  const all = [m.forward, m.evaluation, ...m.steps];
  const limitDiagnostics = bindingLimitDiagnostics(all, options.maxBindingBytes ?? DEFAULT_MAX_BINDING_BYTES, m.file);
  if (limitDiagnostics.length > 0) return { diagnostics: limitDiagnostics };
  try {
    // a node's span is in the file it was written in: the model's, or the stdlib's
    const texts = new Map<string, SourceText>([[m.file, new SourceText(m.file, m.source)]]);
    const position = (span: Span) => {
      let text = texts.get(span.file);
      if (!text) {
        const source = m.otherSources?.get(span.file);
        if (source === undefined) return { line: 0, column: 0 };
        texts.set(span.file, (text = new SourceText(span.file, source)));
      }
      return text.position(span.start);
    };
    const shaders = new Map<string, number>();
    const lower = memoLowerNode();
    const trained = new Set(m.steps.flatMap((g) => g.params.filter((p) => p.update).map((p) => p.path)));
    // a step that outputs its metric totals is fused as it would be without them (the same copies recomputed)
    const stepGraphs = m.steps.map((g, i) => {
      if (options.fuse === false || !m.stepTotals?.[i]) return fused(g);
      const outputs = new Map([...g.outputs].filter(([name]) => !name.startsWith(TOTAL_PREFIX)));
      return timeStage('fuse', () => fuseGraph(g, { rematLike: { ...g, outputs } }).graph);
    });
    const updates: UpdateFusion | undefined = options.fuse === false || options.fuseUpdates === false ? undefined : timeStage('fuse', () => fuseUpdates(stepGraphs, { alignment: options.arenaAlignment }));
    const arenaRefs = new Map<string, ArenaRef>();
    updates?.arenas.forEach((a, arena) => a.members.forEach((x) => arenaRefs.set(x.key, { arena, offset: x.offset })));
    const at = (path: string) => (arenaRefs.has(path) ? { arena: arenaRefs.get(path)! } : {});
    const params: ParamDecl[] = m.forward.params.map((p, k) => ({
      path: p.path,
      dtype: runtimeDType(p.value.type, `parameter ${p.path}`),
      shape: concreteShape(p.value.type, `parameter ${p.path}`),
      init: initDecl(p.init, k),
      trainable: trained.has(p.path),
      ...at(p.path),
    }));
    const state: StateDecl[] = [];
    for (const g of [m.forward, ...m.steps, m.evaluation]) {
      for (const s of g.state) {
        if (state.some((x) => x.path === s.path)) continue;
        state.push({ path: s.path, dtype: runtimeDType(s.value.type, `state ${s.path}`), shape: concreteShape(s.value.type, `state ${s.path}`), init: initDecl(s.init, 0x10000 + state.length), ...at(s.path) });
      }
    }
    const predict = predictGraph(m.evaluation);
    // losses and metrics that are functions of sums over the batch: those sums, and the graph that finishes them
    const totals = metricTotals(m.unoptimizedEvaluation ?? m.evaluation);
    const evaluation = totals.split ? (m.unoptimizedEvaluation ? optimize(totals.split.evaluation) : totals.split.evaluation) : m.evaluation;
    // lowering each graph to kernels (its fusion, inside, is timed as `fuse`)
    const graphs = timeStage('codegen', () => ({
      // which inputs each result needs, from the graphs before fusion (the evaluation's before the optimization passes, which stack rows of several inputs)
      predict: lowerGraph(fused(predict), 'predict', position, shaders, lower, undefined, inputDependencies(m.unoptimizedEvaluation ? predictGraph(m.unoptimizedEvaluation) : predict)),
      evaluate: lowerGraph(fused(evaluation), 'evaluate', position, shaders, lower, undefined, inputDependencies(evaluation)),
      steps: (updates?.steps ?? stepGraphs).map((g, i) => lowerGraph(g, m.training?.steps[i]?.name ?? `step${i}`, position, shaders, lower, updates && { model: arenaRefs, temps: updates.temps[i] }, inputDependencies(m.steps[i]))),
      ...(totals.split ? { totals: lowerGraph(fused(totals.split.finish), 'totals', position, shaders, lower) } : {}),
      ...(m.stepTotals?.some((g) => g !== undefined)
        ? {
            stepTotals: Object.fromEntries(
              m.stepTotals.flatMap((g, i) => {
                const name = m.training?.steps[i]?.name ?? `step${i}`;
                return g ? [[name, lowerGraph(fused(g), `${name}.totals`, position, shaders, lower)]] : [];
              }),
            ),
          }
        : {}),
    }));
    const sizes = new Set<string>();
    for (const i of m.evaluation.inputs) for (const d of i.value.type.shape) for (const v of freeVars(d)) sizes.add(v);
    const indexUses = indexInputs(m.forward);
    const tables = [...m.evaluation.metrics].filter(([, v]) => v.type.shape.length > 0);
    const tensorDecl = (name: string, v: Value): TensorDecl => ({ name, dtype: runtimeDType(v.type, name), shape: v.type.shape.map(sizeExpr) });
    // better lower or higher: the losses, and the metrics whose definitions say (compiler/elaborate/metric-direction.ts)
    const directions = new Map([...(m.forward.directions ?? m.evaluation.directions ?? [])].filter(([name]) => m.evaluation.losses.has(name) || m.evaluation.metrics.has(name)));
    const program: ModelProgram = {
      format: 'dlc-program',
      version: 1,
      model: m.forward.name,
      file: m.file,
      sizes: [...sizes].sort(),
      inputs: m.evaluation.inputs.map((i) => withIndices(tensorDecl(i.name, i.value), indexUses, position)),
      outputs: [...m.evaluation.outputs].map(([k, v]) => tensorDecl(k, v)),
      losses: [...m.evaluation.losses.keys()],
      metrics: [...m.evaluation.metrics.keys()],
      ...(tables.length > 0 ? { tables: Object.fromEntries(tables.map(([name, v]) => [name, concreteShape(v.type, `metric ${name}`)])) } : {}),
      ...(totals.means.length > 0 ? { means: [...totals.means] } : {}),
      ...(directions.size > 0 ? { directions: Object.fromEntries(directions) } : {}),
      params,
      state,
      ...(updates && updates.arenas.length > 0 ? { arenas: updates.arenas.map((a) => ({ kind: a.kind, dtype: runtimeDType({ dtype: a.dtype, shape: [] }, 'an arena'), size: a.size })), arenaAlignment: updates.alignment } : {}),
      shaders: [...shaders.keys()],
      graphs,
      ...(m.training ? { training: { steps: m.training.steps, ...(m.training.adapt ? { adapt: m.training.adapt } : {}), settings: m.training.settings } } : {}),
    };
    // temporaries share buffers by liveness (memory.ts), weighed at the train block's batch size
    if (options.planMemory === false) return { program, diagnostics: [] };
    const batch = m.training?.settings.batch;
    return { program: timeStage('memory', () => planModelMemory(program, { sizes: new Map(typeof batch === 'number' ? [['B', batch]] : []) })), diagnostics: [] };
  } catch (e) {
    if (!(e instanceof LoweringError)) throw e;
    return { diagnostics: [diagnostic('E0402', e.message, m.forward.params[0]?.span ?? m.forward.inputs[0]?.span ?? { file: m.file, start: 0, end: 0 })] };
  }
}
