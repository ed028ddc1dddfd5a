// Helpers shared by the test suites: hyperparameters written as call arguments, the examples at small sizes, and safetensors files in other writers' dtypes.
import type { Arg } from '../grammar/ast.ts';
import { parse } from '../grammar/parse.ts';
import type { ModelProgram } from '../runtime/program.ts';
import { evalShape } from '../runtime/sizes.ts';

/** `argsOf('MnistMlp', 'hidden: 16')`: the arguments of `train MnistMlp(hidden: 16) {}`, for elaborate's modelArgs. */
export function argsOf(model: string, args: string): Arg[] {
  const decl = parse(`train ${model}(${args}) {}`, 'args.dl').program.body.stmts[0];
  return decl.kind === 'Train' ? [...(decl.args ?? [])] : [];
}

/** An example model with hyperparameters small enough for the float64 interpreter. */
export interface ExampleCase {
  readonly file: string;
  readonly model: string;
  /** Small hyperparameters, as call arguments. */
  readonly args: string;
  readonly sizes: Record<string, number>;
  /** Exclusive upper bounds for integer inputs (class labels, token ids, actions). */
  readonly intRange?: Record<string, number>;
}

export const EXAMPLE_CASES: readonly ExampleCase[] = [
  { file: 'mnist_mlp', model: 'MnistMlp', args: 'hidden: 16', sizes: { B: 3 }, intRange: { label: 10 } },
  { file: 'lenet', model: 'LeNet', args: '', sizes: { B: 2 }, intRange: { label: 10 } },
  { file: 'resnet', model: 'Cifar10ResNet', args: 'depth: 1', sizes: { B: 2 }, intRange: { label: 10 } },
  { file: 'lstm_classifier', model: 'ActivityClassifier', args: 'steps: 4, features: 3, hidden: 5, layers: 2, classes: 3', sizes: { B: 2 }, intRange: { label: 3 } },
  { file: 'char_transformer', model: 'CharGPT', args: 'vocab: 11, ctx: 8, d: 8, heads: 2, depth: 2', sizes: { B: 2, L: 6 }, intRange: { tokens: 11 } },
  { file: 'gan', model: 'Gan', args: 'latent: 4, hidden: 8, pixels: 12', sizes: { B: 3 } },
  { file: 'autoencoder', model: 'AutoEncoder', args: 'code: 4', sizes: { B: 2 } },
  { file: 'autoencoder', model: 'EncoderProbe', args: 'code: 4, classes: 3', sizes: { B: 2 }, intRange: { label: 3 } },
  { file: 'reinforce_cartpole', model: 'CartPolePolicy', args: 'hidden: 8', sizes: { B: 4 }, intRange: { action: 2 } },
  { file: 'a2c_pendulum', model: 'PendulumActorCritic', args: 'hidden: 8', sizes: { B: 4 } },
];

/** A batch of a program's inputs, by name. */
export type Batch = Record<string, Float32Array | Int32Array>;

/**
 * One deterministic batch at the given sizes: integers below the input's `intRange` (default 2), floats
 * from `float` (default uniform in [-0.5, 0.5)).
 */
export function randomBatch(program: ModelProgram, sizes: Record<string, number>, random: () => number, intRange: Record<string, number> = {}, float: () => number = () => random() - 0.5): Batch {
  const bound = new Map(Object.entries(sizes));
  const out: Batch = {};
  for (const i of program.inputs) {
    const n = evalShape(i.shape, bound).reduce((a, b) => a * b, 1);
    if (i.dtype === 'f32') out[i.name] = Float32Array.from({ length: n }, float);
    else out[i.name] = Int32Array.from({ length: n }, () => Math.floor(random() * (intRange[i.name] ?? 2)));
  }
  return out;
}

/** A small iris classifier (two Dense layers), without a train block: the tests add theirs. */
export const IRIS_MODEL = `use std.nn.{Dense}
use std.act.{relu}
use std.loss.{cross_entropy}
use std.metrics.{accuracy}
use std.optim.{adam}

model Iris {
  input features: f32[B, 4]
  input label: i32[B]
  layer fc1 = Dense(4, 16)
  layer fc2 = Dense(16, 3)
  let logits = fc2(relu(fc1(features)))
  output probs = softmax(logits, axis: -1)
  loss = cross_entropy(logits, label)
  metric accuracy = accuracy(logits, label)
}
`;

/** A safetensors file of zeros in other writers' dtypes: [name, dtype, shape, bytes per element]. */
export function zerosFile(tensors: readonly [string, string, readonly number[], number][]): Uint8Array {
  let at = 0;
  const header = tensors.map(([name, dtype, shape, size]) => {
    const bytes = shape.reduce((a, b) => a * b, 1) * size;
    const entry = `"${name}":{"dtype":"${dtype}","shape":[${shape.join(',')}],"data_offsets":[${at},${at + bytes}]}`;
    at += bytes;
    return entry;
  });
  const text = new TextEncoder().encode(`{${header.join(',')}}`);
  const bytes = new Uint8Array(8 + text.length + at);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(text.length), true);
  bytes.set(text, 8);
  return bytes;
}
