// Builds one graph: new values, nodes checked through the op registry, parameters and state; shape errors become diagnostics.
import type { Span } from '../../grammar/ast.ts';
import { diagnostic, type Diagnostic, type Label } from '../diagnostics/diagnostic.ts';
import '../ops/index.ts';
import { getOp, inferOp } from '../ops/registry.ts';
import type { Attrs, DType, Graph, InitSpec, InputInfo, Node, ParamInfo, StateInfo, TensorType, Value } from '../ir/types.ts';
import { type Dim, dimToString, divisionsOfSizes, isDim, shapeToString } from '../shapes/dim.ts';
import { POISON, type CtValue, type LayerV, type TensorV } from './values.ts';
import { crossBatchBroadcast } from './cross-batch.ts';
import type { LayerCall, SizeConstraint } from '../ir/types.ts';

export function typeToString(t: TensorType): string {
  return `${t.dtype}${shapeToString(t.shape)}`;
}

/** An operand with the span of the expression that produced it at this use. */
export interface Operand {
  readonly tensor: TensorV;
  readonly span: Span;
}

interface MutableParam {
  path: string;
  readonly value: Value;
  readonly init: InitSpec;
  readonly span: Span;
}

interface MutableState extends MutableParam {
  update?: Value;
}

/**
 * The most operations one model's graph may have once its loops are unrolled (E0309). Compiling its
 * training step takes about 40 KB per operation (the LSTM example at 40,000 operations: 1.6 GB, 34 s on
 * 2 cores), so this keeps a compile within Node's default heap; the largest example has 10,819.
 */
export const MAX_GRAPH_NODES = 50_000;

export class GraphBuilder {
  private nextId = 0;
  private overBudget = false;
  readonly nodes: Node[] = [];
  readonly inputs: InputInfo[] = [];
  readonly params: MutableParam[] = [];
  readonly state: MutableState[] = [];
  readonly outputs = new Map<string, Value>();
  readonly losses = new Map<string, Value>();
  readonly metrics = new Map<string, Value>();
  readonly directions = new Map<string, 'min' | 'max'>();
  readonly layers: LayerV[] = [];
  /** Model-level names of a layer instance already named elsewhere (`layer pair = [shared, shared]`). */
  readonly modelAliases: { path: string; layer: LayerV }[] = [];
  readonly constraints: SizeConstraint[] = [];
  readonly layerCalls: { layer: LayerV; depth: number; inputs: Value[]; outputs: Value[]; span: Span }[] = [];
  private randomStreams = 0;
  private rngKey: TensorV | undefined;

  constructor(
    readonly name: string,
    private readonly report: (d: Diagnostic) => void,
  ) {}

  newValue(type: TensorType, name?: string): Value {
    return { id: this.nextId++, type, ...(name !== undefined ? { name } : {}) };
  }

  input(name: string, type: TensorType, span: Span): TensorV {
    const value = this.newValue(type, name);
    this.inputs.push({ name, value, span });
    return { kind: 'tensor', value, origin: span };
  }

  param(path: string, type: TensorType, init: InitSpec, span: Span): TensorV {
    const value = this.newValue(type, path);
    const record: MutableParam = { path, value, init, span };
    this.params.push(record);
    return { kind: 'tensor', value, origin: span, member: { path, state: false } };
  }

  stateBuffer(path: string, type: TensorType, init: InitSpec, span: Span): TensorV {
    const value = this.newValue(type, path);
    this.state.push({ path, value, init, span });
    return { kind: 'tensor', value, origin: span, member: { path, state: true } };
  }

  /** The state buffer's value as the graph has it so far: its latest update, or the buffer itself. */
  stateValue(value: Value): Value {
    return this.state.find((x) => x.value.id === value.id)?.update ?? value;
  }

  setStateUpdate(value: Value, update: Value): boolean {
    const s = this.state.find((x) => x.value.id === value.id);
    if (!s) return false;
    s.update = update;
    return true;
  }

  /** Renames the parameters and state created under a temporary prefix (layers built before they are named). */
  /**
   * Every path under a key of `renames` (the key itself, or the key then `.`) moved under its value: one
   * pass, looking each path's prefixes up (a list of n layers renamed one at a time made n passes).
   */
  renamePrefixes(renames: ReadonlyMap<string, string>): void {
    if (renames.size === 0) return;
    for (const p of [...this.params, ...this.state, ...this.layers]) {
      for (let end = p.path.length; end > 0; end = p.path.lastIndexOf('.', end - 1)) {
        const to = renames.get(p.path.slice(0, end));
        if (to !== undefined) {
          p.path = to + p.path.slice(end);
          break;
        }
      }
    }
  }

  /** The model's random key: one u32 state buffer, advanced by the runtime every step. */
  randomKey(span: Span): { key: TensorV; stream: number } {
    if (!this.rngKey) this.rngKey = this.stateBuffer('rng.key', { dtype: 'u32', shape: [] }, { kind: 'zeros', options: {} }, span);
    return { key: this.rngKey, stream: this.randomStreams++ };
  }

  /**
   * Emits one primitive. Its registry rule infers the result type; a rule failure is reported once with
   * both operands' shapes and spans, and the result is poison so that nothing downstream repeats it.
   */
  /** Carries the size condition `left >= right` into the graph, checked when the sizes are bound; once. */
  requireAtLeast(left: Dim, right: Dim, span: Span): void {
    const text = `${dimToString(left)} >= ${dimToString(right)}`;
    if (!this.constraints.some((c) => c.text === text)) this.constraints.push({ op: '>=', left, right, text, span });
  }

  /** The user's call the elaborator is inside, if any (set by the elaborator). */
  siteOf?: () => Span | undefined;

  emit(op: string, operands: readonly Operand[], attrs: Attrs, span: Span, outputs = 1): CtValue[] {
    if (this.nodes.length >= MAX_GRAPH_NODES) {
      if (!this.overBudget) {
        this.overBudget = true;
        this.report(diagnostic('E0309', `the model has more than ${MAX_GRAPH_NODES.toLocaleString('en-US')} operations once its loops are unrolled; it is refused before it exhausts the compiler's memory`, span));
      }
      return Array.from({ length: outputs }, () => POISON);
    }
    const def = getOp(op);
    if (!def) {
      this.report(diagnostic('E0900', `the primitive \`${op}\` is not registered`, span));
      return Array.from({ length: outputs }, () => POISON);
    }
    const types = operands.map((o) => o.tensor.value.type);
    const inferred = inferOp(op, types, attrs);
    if (!Array.isArray(inferred)) {
      const primary = inferred.operand !== undefined ? operands[inferred.operand] : undefined;
      const other = inferred.otherOperand !== undefined ? operands[inferred.otherOperand] : undefined;
      const secondary: Label[] = [];
      if (other) secondary.push({ span: other.span, message: typeToString(other.tensor.value.type) });
      // a parameter's shape comes from its declaration: point there too
      for (const o of [primary, other]) {
        if (o?.tensor.member) secondary.push({ span: o.tensor.origin, message: `\`${this.memberName(o.tensor)}\` is declared here` });
      }
      this.report(
        diagnostic('E0301', inferred.message, primary?.span ?? span, {
          label: primary ? typeToString(primary.tensor.value.type) : undefined,
          secondary,
          help: [inferred.help, multipleHint(types, attrs)].filter((h) => h !== undefined).join('; ') || undefined,
        }),
      );
      return Array.from({ length: outputs }, () => POISON);
    }
    if (def.family === 'elementwise' && types.length >= 2 && !span.file.startsWith('stdlib/')) this.warnCrossBatch(types, inferred[0], span);
    const values = inferred.map((t) => this.newValue(t));
    // a node the standard library builds remembers the user's call it ran under
    const site = span.file.startsWith('stdlib/') ? this.siteOf?.() : undefined;
    this.nodes.push({ op, inputs: operands.map((o) => o.tensor.value), attrs, outputs: values, span: site ? { ...span, site } : span });
    return values.map((value) => ({ kind: 'tensor', value, origin: span }) as TensorV);
  }

  private readonly crossBatchWarned = new Set<string>();

  /** W0301 once per expression: an implicit broadcast that pairs every example of the batch with every other. */
  private warnCrossBatch(types: readonly TensorType[], result: TensorType, span: Span): void {
    const batch = this.inputs.flatMap((i) => (i.value.type.shape.length > 0 ? [i.value.type.shape[0]] : []));
    const found = crossBatchBroadcast(types, batch);
    const key = `${span.file}:${span.start}:${span.end}`;
    if (!found || this.crossBatchWarned.has(key)) return;
    this.crossBatchWarned.add(key);
    const size = dimToString(found.size);
    const shapes = types.map(typeToString);
    this.report(
      diagnostic('W0301', `this broadcasts ${shapes.join(' against ')} to ${typeToString(result)}: every example of the batch paired with every other (${size} x ${size})`, span, {
        help: `to pair each example with its own, give both operands the same axes: drop the size-1 axis (\`pred[:, 0]\`) or add it to the other (\`label[:, None]\`); to mean every pair, write both axes out: \`a[:, None] - b[None, :]\``,
      }),
    );
  }

  /** A member's final path, or its own name while its layer is still being built (and not yet named). */
  private memberName(t: TensorV): string {
    const record = [...this.params, ...this.state].find((p) => p.value.id === t.value.id);
    const path = record?.path ?? t.member!.path;
    return path.includes('\u0000') || path.includes('#') ? path.slice(path.lastIndexOf('.') + 1) : path;
  }

  constant(value: number | Dim, dtype: DType, span: Span): TensorV {
    // a symbolic size (B) is a uniform word when the graph runs
    const [t] = this.emit('full', [], { shape: [], value, dtype }, span);
    return t as TensorV;
  }

  finish(): Graph {
    return {
      name: this.name,
      inputs: this.inputs,
      params: this.params.map((p): ParamInfo => ({ path: p.path, value: p.value, init: p.init, span: p.span })),
      state: this.state.map(
        (s): StateInfo => ({ path: s.path, value: s.value, init: s.init, span: s.span, ...(s.update ? { update: s.update } : {}) }),
      ),
      nodes: this.nodes,
      outputs: this.outputs,
      losses: this.losses,
      metrics: this.metrics,
      ...(this.directions.size > 0 ? { directions: this.directions } : {}),
      constraints: this.constraints,
      layerCalls: this.layerCalls.map(
        (c): LayerCall => ({ path: c.layer.path, layer: c.layer.decl.name.text, depth: c.depth, inputs: c.inputs, outputs: c.outputs, span: c.span }),
      ),
      aliases: this.aliases(),
    };
  }

  /** Each path that reaches a layer instance declared under another (a tied layer), to that other path. */
  private aliases(): Map<string, string> {
    const out = new Map<string, string>();
    const visit = (v: CtValue, path: string): void => {
      if (v.kind === 'layer' && v.path !== path) out.set(path, v.path);
      else if (v.kind === 'list') v.items.forEach((item, i) => visit(item, `${path}.${i}`));
    };
    for (const l of this.layers) for (const [name, v] of l.members) visit(v, `${l.path}.${name}`);
    for (const a of this.modelAliases) if (a.layer.path !== a.path) out.set(a.path, a.layer.path);
    for (const [from, to] of out) if (/[\u0000#]/.test(from + to)) out.delete(from);
    return out;
  }
}

/**
 * For a shape error over a size divided by a number (`2*(H / 2)` against H, after a pool and an
 * upsample): the `where` that tells the compiler the size is a multiple of it.
 */
function multipleHint(types: readonly TensorType[], attrs: Attrs): string | undefined {
  const dims: Dim[] = types.flatMap((t) => t.shape);
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (v !== null && typeof v === 'object' && isDim(v)) dims.push(v);
  };
  Object.values(attrs).forEach(visit);
  const seen = new Map<string, number>();
  for (const d of dims) for (const { name, by } of divisionsOfSizes(d)) seen.set(name, Math.max(seen.get(name) ?? 0, by));
  if (seen.size === 0) return undefined;
  const facts = [...seen].map(([name, by]) => `${name} % ${by} == 0`).join(', ');
  const [name, by] = [...seen][0];
  return `if the input sizes are always such multiples, say so in the model: \`where ${facts}\` makes ${by}*(${name} / ${by}) equal ${name} (the condition is checked on every batch)`;
}
