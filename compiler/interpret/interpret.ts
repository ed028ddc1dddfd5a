// The float64 reference interpreter: binds symbolic sizes from the feeds, then runs every node through the op registry.
import type { Graph, TensorType, Value } from '../ir/types.ts';
import { type Dim, dimEquals, evaluate, freeVars, isConcrete, shapeToString, sizeName, sym } from '../shapes/dim.ts';
import { conditionHolds } from '../../runtime/sizes.ts';
import { getOp } from '../ops/index.ts';
import type { InterpretEnv } from '../ops/registry.ts';
import { shapeString, type Tensor } from './tensor.ts';

export interface Feeds {
  readonly inputs: ReadonlyMap<string, Tensor>;
  /** Keyed by parameter path (`net.hidden.0.w`). */
  readonly params: ReadonlyMap<string, Tensor>;
  /** Keyed by state path. */
  readonly state: ReadonlyMap<string, Tensor>;
}

export interface InterpretOptions {
  /** Sizes known up front; the rest are bound from the feeds' shapes. */
  readonly sizes?: ReadonlyMap<string, number>;
  /** Values held at these tensors: the nodes that define them are not run (gradcheck holds stop_gradient's results). */
  readonly pinned?: ReadonlyMap<number, Tensor>;
}

export interface InterpretResult {
  /** Every value the graph defines or is fed, by value id. */
  readonly values: Map<number, Tensor>;
  readonly outputs: Map<string, Tensor>;
  readonly losses: Map<string, Tensor>;
  readonly metrics: Map<string, Tensor>;
  /** The new contents of each state buffer that the graph updates, by path. */
  readonly state: Map<string, Tensor>;
  /** The size bindings used (B = 32, ...). */
  readonly sizes: Map<string, number>;
}

function describe(type: TensorType): string {
  return `${type.dtype}${shapeToString(type.shape)}`;
}

/**
 * Bind every plain symbolic size (a dim that is just `B`) from the fed shapes, then check every fed
 * tensor against its declared type under those bindings (this catches `T + 1` style sizes that
 * disagree, and concrete sizes that differ).
 */
function bindSizes(fed: readonly { what: string; value: Value; tensor: Tensor }[], sizes: Map<string, number>): void {
  for (const { what, value, tensor } of fed) {
    const declared = value.type.shape;
    if (declared.length !== tensor.shape.length) {
      throw new Error(`${what}: fed ${shapeString(tensor)} but it is declared ${describe(value.type)}`);
    }
    declared.forEach((d, i) => {
      if (isConcrete(d)) return;
      const name = sizeName(d);
      if (name === undefined) return;
      const vars = [name];
      const seen = sizes.get(vars[0]);
      const actual = tensor.shape[i];
      if (seen !== undefined && seen !== actual) {
        throw new Error(`${what}: size ${vars[0]} is ${actual} here but ${seen} elsewhere`);
      }
      sizes.set(vars[0], actual);
    });
  }
  for (const { what, value, tensor } of fed) {
    if (value.type.dtype !== tensor.dtype) throw new Error(`${what}: fed ${shapeString(tensor)} but it is declared ${describe(value.type)}`);
    checkShape(what, 'fed', tensor, value.type.shape, sizes);
  }
}

function checkShape(what: string, verb: string, t: Tensor, declared: readonly Dim[], sizes: Map<string, number>): void {
  let expected: number[];
  try {
    expected = declared.map((d) => evaluate(d, sizes));
  } catch (e) {
    throw new Error(`${what}: cannot evaluate ${shapeToString(declared)}: ${(e as Error).message}`);
  }
  const ok = expected.length === t.shape.length && expected.every((d, i) => d === t.shape[i]);
  if (!ok) {
    const binding = [...sizes].map(([k, v]) => `${k}=${v}`).join(', ');
    throw new Error(`${what}: ${verb} ${shapeString(t)} but its type ${shapeToString(declared)} is [${expected.join(', ')}]${binding ? ` under ${binding}` : ''}`);
  }
}

export function interpretGraph(graph: Graph, feeds: Feeds, env: InterpretOptions = {}): InterpretResult {
  const sizes = new Map<string, number>(env.sizes ?? []);
  const values = new Map<number, Tensor>();
  const fed: { what: string; value: Value; tensor: Tensor }[] = [];
  const need = (map: ReadonlyMap<string, Tensor>, kind: string, key: string, value: Value) => {
    const t = map.get(key);
    if (!t) throw new Error(`missing ${kind} ${key}: it is declared ${describe(value.type)}`);
    fed.push({ what: `${kind} ${key}`, value, tensor: t });
    values.set(value.id, t);
  };
  for (const i of graph.inputs) need(feeds.inputs, 'input', i.name, i.value);
  for (const p of graph.params) need(feeds.params, 'param', p.path, p.value);
  for (const s of graph.state) need(feeds.state, 'state', s.path, s.value);
  bindSizes(fed, sizes);
  for (const c of graph.constraints ?? []) {
    const l = evaluate(c.left, sizes);
    const r = evaluate(c.right, sizes);
    if (!conditionHolds(c.op, l, r)) throw new Error(`constraint \`${c.text}\` does not hold for the sizes fed (${[...sizes].map(([k, v]) => `${k} = ${v}`).join(', ')})`);
  }

  const opEnv: InterpretEnv = { sizes };
  graph.nodes.forEach((node, n) => {
    if (env.pinned && node.outputs.every((out) => env.pinned!.has(out.id))) {
      for (const out of node.outputs) values.set(out.id, env.pinned.get(out.id)!);
      return;
    }
    const def = getOp(node.op);
    if (!def) throw new Error(`node ${n}: unknown primitive ${node.op}`);
    const args = node.inputs.map((v) => {
      const t = values.get(v.id);
      if (!t) throw new Error(`node ${n} (${node.op}): input %${v.id} is used before it is defined`);
      return t;
    });
    const results = def.interpret(args, node.attrs, opEnv);
    if (results.length !== node.outputs.length) {
      throw new Error(`node ${n} (${node.op}): produced ${results.length} results for ${node.outputs.length} outputs`);
    }
    results.forEach((t, k) => {
      const out = node.outputs[k];
      const what = `node ${n} (${node.op}) output %${out.id}`;
      if (t.dtype !== out.type.dtype) throw new Error(`${what}: produced ${shapeString(t)} but it is declared ${describe(out.type)}`);
      checkShape(what, 'produced', t, out.type.shape, sizes);
      values.set(out.id, t);
    });
  });

  const collect = (m: ReadonlyMap<string, Value>, kind: string) => {
    const r = new Map<string, Tensor>();
    for (const [name, v] of m) {
      const t = values.get(v.id);
      if (!t) throw new Error(`${kind} ${name}: value %${v.id} is never defined`);
      r.set(name, t);
    }
    return r;
  };
  const state = new Map<string, Tensor>();
  for (const s of graph.state) if (s.update) state.set(s.path, values.get(s.update.id)!);
  return {
    values,
    outputs: collect(graph.outputs, 'output'),
    losses: collect(graph.losses, 'loss'),
    metrics: collect(graph.metrics, 'metric'),
    state,
    sizes,
  };
}
