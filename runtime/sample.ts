// Autoregressive sampling from a model whose output is the next token's distribution: one predict per token, seeded, with temperature and top-k; browser-safe.
import { InputError } from './errors.ts';
import type { Model } from './model.ts';
import { uniformAt } from './philox.ts';
import type { ModelProgram, TensorDecl } from './program.ts';

export interface SampleOptions {
  /** Tokens to generate. */
  readonly length: number;
  /**
   * The longest token row the model reads (its L's largest value, e.g. the training windows' length).
   * A model whose rows have a fixed length (`i32[B, 17]`, as a recurrence unrolled by `scan` needs)
   * reads exactly that many: a shorter prompt is padded on the left with its first token.
   */
  readonly context: number;
  /** The token input (default: the model's only i32 input shaped [B, L] or [B, n]). */
  readonly input?: string;
  /** The next-token distribution (default: the model's only f32 output shaped [B, V]). */
  readonly output?: string;
  /** Divides the log-probabilities (default 1); 0 always takes the likeliest token. */
  readonly temperature?: number;
  /** Sample among the k likeliest tokens only. */
  readonly topK?: number;
  /** Nucleus sampling: among the likeliest tokens whose probabilities (after temperature and top-k) add up to at least p, in (0, 1]. */
  readonly topP?: number;
  readonly seed?: number;
  /** Called with each token as it is drawn. */
  readonly onToken?: (token: number) => void;
}

/** The token input and next-token output of a language model, as `sampleTokens` finds them; a message when it cannot. */
export function languageModelIo(program: ModelProgram, names: { readonly input?: string; readonly output?: string } = {}): { input: TensorDecl; output: TensorDecl } | string {
  const inputs = program.inputs.filter((i) => (names.input === undefined || i.name === names.input) && i.dtype === 'i32' && i.shape.length === 2 && i.shape[0] === 'B' && (typeof i.shape[1] === 'string' || (typeof i.shape[1] === 'number' && i.shape[1] >= 2)));
  const outputs = program.outputs.filter((o) => (names.output === undefined || o.name === names.output) && o.dtype === 'f32' && o.shape.length === 2 && o.shape[0] === 'B');
  const one = (found: readonly TensorDecl[], what: string, name: string | undefined) =>
    found.length === 1 ? undefined : found.length === 0 ? `${program.model} has no ${what}${name ? ` named \`${name}\`` : ''}` : `${program.model} has several ${what}s (${found.map((f) => `\`${f.name}\``).join(', ')}); choose one`;
  const why = one(inputs, 'i32 token input shaped [B, L] (or [B, n], n >= 2)', names.input) ?? one(outputs, 'f32 next-token output shaped [B, V]', names.output);
  return why ?? { input: inputs[0], output: outputs[0] };
}

/**
 * Draws `options.length` tokens after `prompt`, each from the model's next-token distribution given
 * the last `context` tokens so far, and returns them (without the prompt). A model that predicts the
 * token after the row's last (`next_probs` of a GPT trained on rows shifted by one: it reads
 * `tokens[:, :-1]`) is fed the window and one placeholder token; which of the two conventions the
 * model follows is found by feeding it two rows that differ only in their last token.
 */
export async function sampleTokens(model: Model, prompt: readonly number[], options: SampleOptions): Promise<number[]> {
  const io = languageModelIo(model.program, options);
  if (typeof io === 'string') throw new InputError(io);
  const { length, context } = options;
  const temperature = options.temperature ?? 1;
  if (!Number.isInteger(length) || length < 0) throw new InputError(`the length to sample must be a non-negative integer, not ${length}`);
  if (!Number.isInteger(context) || context < 2) throw new InputError(`the context must be an integer of at least 2, not ${context}`);
  if (!(temperature >= 0)) throw new InputError(`the temperature must be at least 0, not ${temperature}`);
  if (options.topK !== undefined && (!Number.isInteger(options.topK) || options.topK < 1)) throw new InputError(`top-k must be a positive integer, not ${options.topK}`);
  if (options.topP !== undefined && !(options.topP > 0 && options.topP <= 1)) throw new InputError(`top-p must be in (0, 1], not ${options.topP}`);
  if (prompt.length === 0) throw new InputError('sampling needs a prompt of at least one token');
  // a fixed row length: every row is exactly that long, padded on the left with the prompt's first token
  const fixed = typeof io.input.shape[1] === 'number' ? io.input.shape[1] : undefined;
  const padded = (row: readonly number[]) => (fixed === undefined || row.length >= fixed ? row : [...new Array<number>(fixed - row.length).fill(prompt[0]), ...row]);
  const run = async (row: readonly number[]) => (await model.predict({ [io.input.name]: Int32Array.from(padded(row)) } as never, { sizes: { B: 1 } }))[io.output.name as never] as Float32Array;
  // does the output read the row's last token? Feed two rows that differ only there.
  const rowLength = fixed ?? context;
  const probe = prompt.slice(-(rowLength - 1));
  const [a, b] = [await run([...probe, 0]), await run([...probe, 1])];
  const placeholder = a.every((v, i) => v === b[i]);
  const window = placeholder ? rowLength - 1 : rowLength;
  const tokens = [...prompt];
  const drawn: number[] = [];
  for (let i = 0; i < length; i++) {
    const row = tokens.slice(-window);
    const probs = await run(placeholder ? [...row, 0] : row);
    const token = draw(probs, temperature, options.topK, uniformAt(options.seed ?? 0, 0x5a3b1e, i), options.topP);
    tokens.push(token);
    drawn.push(token);
    options.onToken?.(token);
  }
  return drawn;
}

/** One token from `probs` by inverse CDF at `u` in [0, 1), after temperature, top-k and top-p; the likeliest at temperature 0. */
export function draw(probs: Float32Array, temperature: number, topK: number | undefined, u: number, topP?: number): number {
  const order = [...probs.keys()].sort((x, y) => probs[y] - probs[x] || x - y);
  let kept = order.slice(0, temperature === 0 ? 1 : (topK ?? order.length));
  // p^(1/T), renormalized, is softmax(logits / T)
  let weights = kept.map((k) => (probs[k] > 0 ? Math.exp(Math.log(probs[k]) / (temperature || 1)) : 0));
  if (topP !== undefined && topP < 1) {
    // the nucleus: the likeliest tokens until their share reaches p (at least one)
    const sum = weights.reduce((s, w) => s + w, 0);
    let acc = 0;
    let n = 0;
    while (n < weights.length && (n === 0 || acc < topP * sum)) acc += weights[n++];
    kept = kept.slice(0, n);
    weights = weights.slice(0, n);
  }
  const total = weights.reduce((s, w) => s + w, 0);
  if (!(total > 0)) return kept[0];
  let acc = 0;
  for (let j = 0; j < kept.length; j++) {
    acc += weights[j] / total;
    if (u < acc) return kept[j];
  }
  return kept[kept.length - 1];
}
