// einsum("bij,bjk->bik", a, b): a subscript contraction lowered to sums, transposes, reshapes and batched matmuls.
import type * as A from '../../grammar/ast.ts';
import * as D from '../shapes/dim.ts';
import { typeToString } from './builder.ts';
import { POISON, type CtValue, type TensorV } from './values.ts';

/** One operand with the span of its argument. */
export interface EinsumOperand {
  readonly tensor: TensorV;
  readonly span: A.Span;
}

/** What einsum needs of the elaborator: emitting one primitive, and failing with a diagnostic. */
export interface EinsumHost {
  emit(op: string, operands: readonly EinsumOperand[], attrs: Record<string, unknown>): CtValue;
  fail(code: 'E0301' | 'E0303', message: string, span: A.Span, extra?: { help?: string; label?: string }): never;
}

/** A tensor with a subscript letter per axis; `...` axes get the letters `0`, `1`, ... from the right. */
interface Labelled {
  readonly tensor: TensorV;
  readonly labels: readonly string[];
  readonly span: A.Span;
}

const LETTER = /^[A-Za-z]$/;

/** The parsed subscripts: one list per operand and the output's, `...` still as the token '...'. */
function parseSpec(spec: string, count: number, host: EinsumHost, at: A.Span): { inputs: string[][]; output: string[] | null } {
  const text = spec.replaceAll(' ', '');
  const [lhs, rhs, ...extra] = text.split('->');
  if (extra.length > 0) host.fail('E0303', `the einsum subscripts "${spec}" have more than one \`->\``, at);
  const tokens = (part: string): string[] => {
    const out: string[] = [];
    for (let i = 0; i < part.length; i++) {
      if (part.startsWith('...', i)) {
        if (out.includes('...')) host.fail('E0303', `the einsum subscripts "${spec}" have \`...\` twice in one operand`, at);
        out.push('...');
        i += 2;
      } else if (LETTER.test(part[i])) out.push(part[i]);
      else host.fail('E0303', `the einsum subscripts "${spec}" have \`${part[i]}\`: subscripts are letters, with \`,\` between operands, \`->\` before the output and \`...\` for leading axes`, at);
    }
    return out;
  };
  const inputs = lhs.split(',').map(tokens);
  if (inputs.length !== count) {
    host.fail('E0303', `the einsum subscripts "${spec}" describe ${inputs.length} operand${inputs.length === 1 ? '' : 's'}, but ${count} ${count === 1 ? 'is' : 'are'} given`, at);
  }
  return { inputs, output: rhs === undefined ? null : tokens(rhs) };
}

/** The tensor's axes labelled: `...` expands to the axes no letter takes, named by their position from the right. */
function label(op: EinsumOperand, subscripts: readonly string[], spec: string, host: EinsumHost): Labelled {
  const rank = op.tensor.value.type.shape.length;
  const letters = subscripts.filter((s) => s !== '...');
  const dots = subscripts.indexOf('...');
  if (dots < 0 ? letters.length !== rank : letters.length > rank) {
    host.fail('E0301', `einsum "${spec}" gives ${typeToString(op.tensor.value.type)} the subscripts "${subscripts.join('')}": ${letters.length} letter${letters.length === 1 ? '' : 's'} for ${rank} ax${rank === 1 ? 'is' : 'es'}`, op.span, { label: typeToString(op.tensor.value.type) });
  }
  const spread = rank - letters.length;
  const labels = dots < 0 ? [...letters] : [...letters.slice(0, dots), ...Array.from({ length: spread }, (_, i) => String(spread - 1 - i)), ...letters.slice(dots)];
  const seen = new Set<string>();
  for (const l of labels) {
    if (seen.has(l)) host.fail('E0301', `einsum "${spec}" repeats \`${l}\` within one operand (a diagonal or trace), which einsum does not take`, op.span, { help: 'take the diagonal with a mask first: `sum(x * tril(triu(ones([n, n]))), axis: -1)` (tril and triu are in std.math)' });
    seen.add(l);
  }
  return { tensor: op.tensor, labels, span: op.span };
}

const product = (ds: readonly D.Dim[]): D.Dim => ds.reduce<D.Dim>((a, d) => D.mul(a, d), 1);

/**
 * Lowers einsum: each operand first sums the letters no other operand and not the output has; then
 * the operands are contracted left to right, each pair as one (batched) matmul of
 * [batch, left, shared] by [batch, shared, right]; the result is transposed to the output's order.
 */
export function lowerEinsum(spec: string, specSpan: A.Span, operands: readonly EinsumOperand[], host: EinsumHost, span: A.Span): CtValue {
  if (operands.length === 0) host.fail('E0303', 'einsum needs at least one operand after its subscripts', span);
  const parsed = parseSpec(spec, operands.length, host, specSpan);
  let items = operands.map((op, i) => label(op, parsed.inputs[i], spec, host));
  // the output: as written, or (numpy's implicit form) the leading axes then the letters used once, in order
  const counts = new Map<string, number>();
  for (const it of items) for (const l of it.labels) counts.set(l, (counts.get(l) ?? 0) + 1);
  const dotLabels = [...counts.keys()].filter((l) => /^\d+$/.test(l)).sort((a, b) => Number(b) - Number(a));
  const output = parsed.output
    ? parsed.output.flatMap((s) => (s === '...' ? dotLabels : [s]))
    : [...dotLabels, ...[...counts].filter(([l, n]) => n === 1 && !/^\d+$/.test(l)).map(([l]) => l).sort()];
  for (const l of output) {
    if (!counts.has(l)) host.fail('E0303', `einsum "${spec}" has \`${l}\` in its output but in no operand`, specSpan);
  }
  if (new Set(output).size !== output.length) host.fail('E0303', `einsum "${spec}" repeats a letter in its output`, specSpan);
  // one size per letter, across operands; a `...` axis of size 1 stretches to the others' (numpy's broadcasting)
  const sizes = new Map<string, { dim: D.Dim; from: Labelled }>();
  for (const it of items) {
    it.labels.forEach((l, axis) => {
      const d = it.tensor.value.type.shape[axis];
      const prev = sizes.get(l);
      const dots = /^\d+$/.test(l);
      if (!prev || (dots && prev.dim === 1)) sizes.set(l, { dim: d, from: it });
      else if (dots && d === 1) return;
      else if (!D.dimEquals(prev.dim, d)) {
        const what = /^\d+$/.test(l) ? 'the `...` axes' : `\`${l}\``;
        host.fail('E0301', `einsum "${spec}": ${what} is ${D.dimToString(prev.dim)} in ${typeToString(prev.from.tensor.value.type)} but ${D.dimToString(d)} in ${typeToString(it.tensor.value.type)}`, it.span, { label: typeToString(it.tensor.value.type) });
      }
    });
  }
  const sizeOf = (l: string) => sizes.get(l)!.dim;
  const tensorOf = (v: CtValue): TensorV => {
    if (v.kind !== 'tensor') throw new EinsumPoisoned();
    return v;
  };
  const emit = (op: string, x: Labelled, attrs: Record<string, unknown>) => tensorOf(host.emit(op, [{ tensor: x.tensor, span: x.span }], attrs));
  /** x with its axes in `order` (a transpose unless already so). */
  const arrange = (x: Labelled, order: readonly string[]): Labelled => {
    if (order.every((l, i) => x.labels[i] === l)) return x;
    return { ...x, tensor: emit('transpose', x, { perm: order.map((l) => x.labels.indexOf(l)) }), labels: [...order] };
  };
  /** x reshaped to `shape` (nothing when it already is), now with `labels`. */
  const reshape = (x: Labelled, shape: readonly D.Dim[], labels: readonly string[]): Labelled => {
    const same = shape.length === x.tensor.value.type.shape.length && shape.every((d, i) => D.dimEquals(d, x.tensor.value.type.shape[i]));
    return { ...x, tensor: same ? x.tensor : emit('reshape', x, { shape: [...shape] }), labels: [...labels] };
  };
  /** Sums away the letters of x that `needed` does not list. */
  const sumOut = (x: Labelled, needed: ReadonlySet<string>): Labelled => {
    const axes = x.labels.flatMap((l, i) => (needed.has(l) ? [] : [i]));
    if (axes.length === 0) return x;
    return { ...x, tensor: emit('reduce_sum', x, { axes, keepdims: false }), labels: x.labels.filter((l) => needed.has(l)) };
  };
  try {
    // the `...` axes of size 1 broadcast to their letter's size
    items = items.map((it) => {
      const shape = it.labels.map(sizeOf);
      const same = shape.every((d, i) => D.dimEquals(d, it.tensor.value.type.shape[i]));
      return same ? it : { ...it, tensor: emit('broadcast_to', it, { shape }) };
    });
    const neededAfter = (i: number): Set<string> => new Set([...output, ...items.slice(i + 1).flatMap((it) => it.labels)]);
    let acc = sumOut(items[0], new Set([...neededAfter(0)]));
    for (let i = 1; i < items.length; i++) {
      const keep = neededAfter(i);
      const right = sumOut(items[i], new Set([...keep, ...acc.labels]));
      const left = sumOut(acc, new Set([...keep, ...right.labels]));
      const batch = left.labels.filter((l) => right.labels.includes(l) && keep.has(l));
      const shared = left.labels.filter((l) => right.labels.includes(l) && !keep.has(l));
      const onlyLeft = left.labels.filter((l) => !right.labels.includes(l));
      const onlyRight = right.labels.filter((l) => !left.labels.includes(l));
      const batchDims = batch.map(sizeOf);
      const labels = [...batch, ...onlyLeft, ...onlyRight];
      if (shared.length === 0) {
        // nothing to sum: an elementwise product, broadcasting [batch, left, 1...] against [batch, 1..., right]
        const a = arrange(left, [...batch, ...onlyLeft]);
        const b = arrange(right, [...batch, ...onlyRight]);
        const a1 = reshape(a, [...batchDims, ...onlyLeft.map(sizeOf), ...onlyRight.map(() => 1)], []);
        const b1 = reshape(b, [...batchDims, ...onlyLeft.map(() => 1), ...onlyRight.map(sizeOf)], []);
        const m = tensorOf(host.emit('mul', [{ tensor: a1.tensor, span: a1.span }, { tensor: b1.tensor, span: b1.span }], {}));
        acc = { tensor: m, labels, span: left.span };
        continue;
      }
      // a (batched) matmul of [batch..., left, shared] by [batch..., shared, right]: the batch axes stay
      // apart (matmul batches over leading axes), so `bhqd,bhkd->bhqk` is q @ transpose(k) as written by hand
      const a = arrange(left, [...batch, ...onlyLeft, ...shared]);
      const b = arrange(right, [...batch, ...shared, ...onlyRight]);
      const [pl, pk, pr] = [onlyLeft, shared, onlyRight].map((ls) => product(ls.map(sizeOf)));
      const a3 = reshape(a, [...batchDims, pl, pk], []);
      const b3 = reshape(b, [...batchDims, pk, pr], []);
      const m = tensorOf(host.emit('matmul', [{ tensor: a3.tensor, span: a3.span }, { tensor: b3.tensor, span: b3.span }], {}));
      acc = reshape({ tensor: m, labels: [], span: left.span }, labels.map(sizeOf), labels);
    }
    return arrange(sumOut(acc, new Set(output)), output).tensor;
  } catch (e) {
    if (e instanceof EinsumPoisoned) return POISON;
    throw e;
  }
}

/** A step of the lowering failed (and reported why): the einsum's value is poison. */
class EinsumPoisoned extends Error {}
