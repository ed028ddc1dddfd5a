// Common-subexpression elimination: a node with the same op, inputs and attributes as an earlier one reuses its outputs.
import '../ops/index.ts';
import { getOp } from '../ops/registry.ts';
import type { AttrValue, Attrs, Graph, Node } from '../ir/types.ts';
import { dimEquals, dimKey, isDim } from '../shapes/dim.ts';
import { Substitution, withNodes } from './rewrite.ts';

function attrEqual(a: AttrValue, b: AttrValue): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => attrEqual(x, (b as readonly AttrValue[])[i]));
  }
  // Object.is: 0 and -0 are different constants (1/x tells them apart), and NaN equals NaN.
  if (typeof a === 'number' && typeof b === 'number') return Object.is(a, b);
  // symbolic sizes are compared by normal form; one never equals a plain number (normal forms fold constants)
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) return isDim(a) && isDim(b) && dimEquals(a, b);
  return a === b;
}

/** Deep equality of attribute records; an attribute set to undefined counts as absent. */
export function attrsEqual(a: Attrs, b: Attrs): boolean {
  const ka = Object.keys(a).filter((k) => a[k] !== undefined).sort();
  const kb = Object.keys(b).filter((k) => b[k] !== undefined).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && attrEqual(a[k], b[k]));
}

function sameNode(a: Node, b: Node): boolean {
  if (a.op !== b.op || a.inputs.length !== b.inputs.length || !a.inputs.every((v, i) => v.id === b.inputs[i].id)) return false;
  // Random ops are pure functions of (key, stream, shape), so equal attributes mean equal samples; they
  // merge only when the stream is written out identically (an absent stream never matches an explicit 0).
  if (getOp(a.op)?.family === 'random' && a.attrs.stream !== b.attrs.stream) return false;
  return attrsEqual(a.attrs, b.attrs);
}

/**
 * A signature of attributes that equal attributes share (attrsEqual implies equal signatures, never the
 * reverse: -0 and 0 share one), so buckets of constants stay small. Symbolic sizes are in it by their
 * normal form: the row blocks [t * B, (t + 1) * B) that an unrolled recurrence's stacked matmuls are
 * sliced into (stack-matmuls.ts) fell in one bucket, and each slice was compared with every earlier one.
 */
export function attrsSignature(attrs: Attrs): string {
  const sig = (v: AttrValue): string =>
    Array.isArray(v) ? `[${v.map(sig).join(',')}]` : typeof v === 'object' && v !== null ? (isDim(v) ? dimKey(v) : 'object') : typeof v === 'string' ? JSON.stringify(v) : String(v);
  return Object.keys(attrs)
    .filter((k) => attrs[k] !== undefined)
    .sort()
    .map((k) => `${k}=${sig(attrs[k] as AttrValue)}`)
    .join(';');
}

export function cse(g: Graph): Graph {
  const s = new Substitution();
  const seen = new Map<string, Node[]>();
  const nodes: Node[] = [];
  for (const original of g.nodes) {
    const n = s.node(original);
    const key = `${n.op}(${n.inputs.map((v) => v.id).join(',')})${attrsSignature(n.attrs)}`;
    const bucket = seen.get(key) ?? [];
    const first = bucket.find((m) => sameNode(m, n));
    if (first) {
      n.outputs.forEach((o, i) => s.set(o, first.outputs[i]));
      continue;
    }
    bucket.push(n);
    seen.set(key, bucket);
    nodes.push(n);
  }
  if (s.size === 0) return g;
  return withNodes(g, nodes, s);
}
