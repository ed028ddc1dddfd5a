// `dlc sample`: text from a trained character language model: the prompt, then tokens drawn one at a time from the checkpoint's next-token distribution.
import { readFile } from 'node:fs/promises';
import type { ModelProgram } from '../../runtime/program.ts';
import { decodeSafetensors } from '../../runtime/safetensors.ts';
import { languageModelIo, sampleTokens } from '../../runtime/sample.ts';
import { prepareData, savedCheckpoint, TrainError, type TrainFlags, type TrainIo, withModel } from './train.ts';

export interface SampleFlags extends TrainFlags {
  readonly prompt?: string;
  readonly length?: string;
  readonly temperature?: string;
  readonly topK?: string;
  readonly topP?: string;
  readonly input?: string;
  readonly output?: string;
}

function number(v: string | undefined, what: string, check: (n: number) => boolean, rule: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !check(n)) throw new TrainError(`--${what} must be ${rule}, got \`${v}\``);
  return n;
}

/** Whether `program` can be sampled from: it has one token input and one next-token output. */
export function canSample(program: ModelProgram, flags: { readonly input?: string; readonly output?: string } = {}): boolean {
  return typeof languageModelIo(program, flags) !== 'string';
}

/**
 * Loads the checkpoint and prints the prompt and `--length` sampled characters. The vocabulary and the
 * window length come from the checkpoint (dlc train records them), else from the train block's data.
 */
export async function sampleProgram(program: ModelProgram, file: string, flags: SampleFlags, io: TrainIo): Promise<string> {
  const lm = languageModelIo(program, flags);
  if (typeof lm === 'string') throw new TrainError(lm);
  const length = number(flags.length, 'length', (n) => Number.isInteger(n) && n >= 0, 'a whole number') ?? 200;
  const temperature = number(flags.temperature, 'temperature', (n) => n >= 0, 'a number of at least 0') ?? 1;
  const topK = number(flags.topK, 'top-k', (n) => Number.isInteger(n) && n >= 1, 'a whole number of at least 1');
  const topP = number(flags.topP, 'top-p', (n) => n > 0 && n <= 1, 'a number in (0, 1]');
  const seed = number(flags.seed, 'seed', (n) => Number.isInteger(n) && n >= 0, 'a whole number') ?? 0;
  const path = savedCheckpoint(program, file, flags);
  const bytes = new Uint8Array(await readFile(path));
  const metadata = decodeSafetensors(bytes).metadata;
  // a row length the model fixes (a recurrence's [B, 17]) or one it reads from the rows ([B, L])
  const rowLength = lm.input.shape[1];
  const lengthName = typeof rowLength === 'string' ? rowLength : undefined;
  let vocabulary = metadata[`dlc.classes.${lm.input.name}`] ? (JSON.parse(metadata[`dlc.classes.${lm.input.name}`]) as string[]) : undefined;
  let context = typeof rowLength === 'number' ? rowLength : metadata['dlc.sizes'] ? (JSON.parse(metadata['dlc.sizes']) as Record<string, number>)[lengthName!] : undefined;
  if (vocabulary === undefined || context === undefined) {
    // an older checkpoint: the train block's data tells both
    const data = await prepareData(program, file, { ...flags, limit: undefined }, io);
    vocabulary ??= data.train.column(lm.input.name).classes ? [...data.train.column(lm.input.name).classes!] : undefined;
    context ??= data.sizes[lengthName!];
  }
  if (vocabulary === undefined) throw new TrainError(`the data of ${program.model} names no vocabulary for \`${lm.input.name}\` (a text dataset does), so its tokens cannot be read as characters`);
  if (context === undefined) throw new TrainError(`cannot tell the longest \`${lm.input.name}\` row ${program.model} reads (its ${lengthName})`);
  const index = new Map(vocabulary.map((ch, k) => [ch, k]));
  // without --prompt: a newline where the text has them, else its first character
  const prompt = [...(flags.prompt ?? (index.has('\n') ? '\n' : vocabulary[0]))];
  const unknown = [...new Set(prompt.filter((ch) => !index.has(ch)))];
  if (unknown.length > 0) throw new TrainError(`the prompt has ${unknown.map((ch) => JSON.stringify(ch)).join(', ')}, not in the model's vocabulary of ${vocabulary.length} characters`);
  if (prompt.length === 0) throw new TrainError('--prompt is empty; give at least one character');
  return withModel(program, { seed, batchSize: 1, sizes: lengthName ? { [lengthName]: context } : {} }, async (model) => {
    await model.loadWeights(bytes);
    io.err(`sampling ${length} characters from ${path} on ${model.adapterInfo} (temperature ${temperature}${topK ? `, top-k ${topK}` : ''}${topP ? `, top-p ${topP}` : ''}, seed ${seed})`);
    const drawn = await sampleTokens(model, prompt.map((ch) => index.get(ch)!), { length, context, input: lm.input.name, output: lm.output.name, temperature, seed, ...(topK ? { topK } : {}), ...(topP ? { topP } : {}) });
    const text = prompt.join('') + drawn.map((k) => vocabulary[k]).join('');
    io.out(text);
    return text;
  });
}
