// A seeded generator of random valid .dl models at tiny shapes (a stem, a chain of random ops on [B, F], a head with a loss and a metric), for the differential test.
import { seededRandom } from '../compiler/interpret/feeds.ts';

/** The op family a model's stem is drawn from: model `seed` gets `STEMS[seed % STEMS.length]`, so any six consecutive seeds cover every family. */
export const STEMS = ['dense', 'image', 'recurrent', 'scan', 'embedding', 'attention'] as const;
export type Stem = (typeof STEMS)[number];

/** One generated model: its source, and what its inputs need beyond random floats in [-1, 1). */
export interface GeneratedModel {
  readonly seed: number;
  readonly stem: Stem;
  readonly source: string;
  /** Exclusive upper bound of each integer input (class labels, token ids). */
  readonly intRange: Readonly<Record<string, number>>;
  /** The batch size the model is run at (the train block's `batch`). */
  readonly batch: number;
}

/** The batch size every generated model trains and runs at. */
export const BATCH = 3;
/** SGD's learning rate in every generated train block: a power of two, so (before - after) / LR recovers the f32 gradient exactly. */
export const LEARNING_RATE = 1024;

/** Generates the model for `seed` (deterministic: the same seed gives the same source). */
export function generateModel(seed: number): GeneratedModel {
  const random = seededRandom(seed * 7919 + 17);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const stem = STEMS[seed % STEMS.length];
  const lines: string[] = [];
  const inputs: string[] = [];
  const uses = new Set<string>(['Dense']);
  const intRange: Record<string, number> = {};
  let counter = 0;
  const fresh = (prefix = 'h') => `${prefix}${counter++}`;
  let features = 0; // F: the width of the [B, F] tensor `current` names
  let current = '';

  // the stem: produces `current`, a [B, F] tensor
  if (stem === 'dense') {
    features = int(3, 6);
    inputs.push(`input x: f32[B, ${features}]`);
    current = 'x';
  } else if (stem === 'image') {
    const channels = int(1, 3);
    const size = pick([4, 6]);
    inputs.push(`input img: f32[B, ${channels}, ${size}, ${size}]`);
    let c = channels;
    let h = size;
    let v = 'img';
    const layers = int(1, 3);
    for (let k = 0; k < layers; k++) {
      const op = pick(['conv', 'conv', 'maxpool', 'avgpool', 'batchnorm', 'groupnorm', 'upsample', 'convT', 'depthwise']);
      const next = fresh('c');
      if (op === 'conv') {
        const out = int(2, 4);
        const kernel = pick([1, 3]);
        const padding = kernel === 3 ? pick([0, 1]) : 0;
        const stride = h >= 4 ? pick([1, 1, 2]) : 1;
        const dilation = kernel === 3 && h >= 6 && padding === 1 ? pick([1, 2]) : 1;
        if (h + 2 * padding - dilation * (kernel - 1) - 1 < 0) continue;
        uses.add('Conv2d');
        lines.push(`layer L${next} = Conv2d(${c}, ${out}, ${kernel}, stride: ${stride}, padding: ${padding}, dilation: ${dilation})`);
        lines.push(`let ${next} = relu(L${next}(${v}))`);
        h = Math.floor((h + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1;
        c = out;
      } else if (op === 'depthwise') {
        lines.push(`param W${next}: f32[${c * 2}, 1, 3, 3] = he_uniform`);
        lines.push(`let ${next} = conv2d(${v}, W${next}, padding: 1, groups: ${c})`);
        c *= 2;
      } else if ((op === 'maxpool' || op === 'avgpool') && h >= 2) {
        const kernel = pick([2, 3]);
        const padding = kernel === 3 ? pick([0, 1]) : 0;
        const stride = pick([1, 2]);
        if (h + 2 * padding < kernel) continue;
        lines.push(`let ${next} = ${op === 'maxpool' ? 'max' : 'avg'}_pool2d(${v}, kernel: ${kernel}, stride: ${stride}, padding: ${padding})`);
        h = Math.floor((h + 2 * padding - kernel) / stride) + 1;
      } else if (op === 'batchnorm') {
        uses.add('BatchNorm');
        lines.push(`layer L${next} = BatchNorm(${c})`, `let ${next} = L${next}(${v})`);
      } else if (op === 'groupnorm' && c % 2 === 0) {
        uses.add('GroupNorm');
        lines.push(`layer L${next} = GroupNorm(2, ${c})`, `let ${next} = L${next}(${v})`);
      } else if (op === 'upsample' && h <= 4) {
        uses.add('Upsample');
        lines.push(`layer L${next} = Upsample(2)`, `let ${next} = L${next}(${v})`);
        h *= 2;
      } else if (op === 'convT') {
        const out = int(1, 3);
        const stride = pick([1, 2]);
        uses.add('ConvTranspose2d');
        lines.push(`layer L${next} = ConvTranspose2d(${c}, ${out}, 3, stride: ${stride}, padding: 1, output_padding: ${stride - 1})`, `let ${next} = L${next}(${v})`);
        h = (h - 1) * stride - 2 + 3 + stride - 1;
        c = out;
      } else continue;
      v = next;
    }
    features = c * h * h;
    current = fresh();
    lines.push(`let ${current} = reshape(${v}, [B, ${features}])`);
  } else if (stem === 'recurrent') {
    const steps = int(2, 4);
    const width = int(2, 4);
    const hidden = int(2, 5);
    inputs.push(`input seq: f32[B, ${steps}, ${width}]`);
    const cell = pick(['GRU', 'LSTM', 'RNN']);
    const bidirectional = random() < 0.5;
    const twoLayers = random() < 1 / 3;
    uses.add(cell);
    const v = fresh('s');
    lines.push(`layer L${v} = ${cell}(${width}, ${hidden}${bidirectional ? ', bidirectional: true' : ''}${twoLayers ? ', num_layers: 2' : ''})`);
    lines.push(`let ${v} = L${v}(seq)`);
    features = hidden * (bidirectional ? 2 : 1);
    current = fresh();
    lines.push(`let ${current} = ${pick([`${v}[:, -1]`, `mean(${v}, axis: 1)`, `${v}[:, 0]`])}`);
  } else if (stem === 'scan') {
    // a hand-written recurrence; a per-step slice of a mask broadcast into the matmul's epilogue is how
    // masked RNNs are written (and found a fused-matmul bug)
    const steps = int(2, 4);
    const width = int(2, 4);
    const hidden = int(2, 5);
    const direction = pick(['', ' reverse']);
    inputs.push(`input seq: f32[B, ${steps}, ${width}]`);
    lines.push(`param Wx: f32[${width}, ${hidden}] = glorot_uniform`, `param Wh: f32[${hidden}, ${hidden}] = glorot_uniform`);
    const v = fresh('s');
    const form = pick(['plain', 'masked', 'shifted']);
    if (form === 'plain') {
      lines.push(`let ${v} = scan${direction} x_t in seq along 1 carry (h = zeros([B, ${hidden}])) {`, '  h = tanh(x_t @ Wx + h @ Wh)', '  yield h * 2.0', '}');
    } else {
      inputs.push(`input mask: f32[B, ${steps}]`);
      const update = form === 'masked' ? 'h = tanh(x_t @ Wx + h @ Wh) * m_t[:, None] + h * (1.0 - m_t[:, None])' : 'h = tanh(x_t @ Wx + h @ Wh + m_t[:, None])';
      lines.push(`let ${v} = scan${direction} x_t, m_t in (seq, mask) along 1 carry (h = zeros([B, ${hidden}])) {`, `  ${update}`, '  yield h * 2.0', '}');
    }
    features = hidden;
    current = fresh();
    lines.push(`let ${current} = ${v}[:, ${pick([0, -1])}] + h`);
  } else if (stem === 'embedding') {
    const vocabulary = int(3, 6);
    const length = int(2, 3);
    const width = int(2, 4);
    inputs.push(`input ids: i32[B, ${length}]`);
    intRange.ids = vocabulary;
    const how = pick(['Embedding', 'take', 'one_hot']);
    const v = fresh('e');
    if (how === 'Embedding') {
      uses.add('Embedding');
      lines.push(`layer emb = Embedding(${vocabulary}, ${width}${pick(['', ', padding_idx: 0'])})`, `let ${v} = emb(ids)`);
    } else {
      lines.push(`param table: f32[${vocabulary}, ${width}] = normal(std: 0.5)`);
      lines.push(how === 'take' ? `let ${v} = take(table, ids)` : `let ${v} = one_hot(ids, ${vocabulary}) @ table`);
    }
    features = length * width;
    current = fresh();
    lines.push(`let ${current} = reshape(${v}, [B, ${features}])`);
  } else {
    const steps = int(2, 3);
    const width = pick([4, 6]);
    inputs.push(`input seq: f32[B, ${steps}, ${width}]`);
    const v = fresh('a');
    if (random() < 0.5) {
      uses.add('MultiHeadAttention');
      lines.push(`layer att = MultiHeadAttention(${width}, 2${pick(['', ', causal: true'])})`, `let ${v} = att(seq)`);
    } else {
      lines.push(`param Wq: f32[${width}, ${width}] = glorot_uniform`, 'let q = seq @ Wq', 'let scores = einsum("btd,bsd->bts", q, seq) / 2.0');
      lines.push(`let ${v} = einsum("bts,bsd->btd", softmax(scores, axis: -1), seq)`);
    }
    features = steps * width;
    current = fresh();
    lines.push(`let ${current} = reshape(${v}, [B, ${features}])`);
  }
  if (features > 24) {
    const v = fresh();
    lines.push(`layer L${v} = Dense(${features}, 6)`, `let ${v} = L${v}(${current})`);
    current = v;
    features = 6;
  }

  // the body: 2 to 5 random elementwise, reduction, normalization, contraction and movement ops on [B, F]
  const bodyOps = int(2, 5);
  for (let k = 0; k < bodyOps; k++) {
    const v = fresh();
    const c = current;
    const F = features;
    // each returns the expression (setting `features` to its width) or null when it does not apply at this F
    const ops: (() => string | null)[] = [
      () => `${pick(['exp', 'sin', 'cos', 'tanh', 'sigmoid', 'erf', 'expm1', 'square', 'relu', 'gelu', 'silu', 'elu', 'softplus', 'leaky_relu', 'abs', 'neg'])}(${c} * 0.5)`,
      () => `${pick(['log', 'sqrt', 'rsqrt', 'log1p', 'log2', 'log10'])}(abs(${c}) + 0.5)`,
      () => `gelu(${c}, approximate: "tanh")`,
      () => `pow(abs(${c}) + 0.5, ${pick(['1.5', '2.0', '0.5', '-1.0'])})`,
      () => `(abs(${c}) + 0.25) ** ${pick(['2', '3', '2.0', '0.5'])}`,
      () => `${pick(['maximum', 'minimum'])}(${c}, ${c} * 0.3 + 0.1)`,
      () => `${c} / (abs(${c}) + 1.0)`,
      () => `${c} % 0.7`,
      () => `where(${c} > 0.1, ${c}, ${c} * ${c})`,
      () => `select(${c} < 0.0, 0.2 * ${c}, ${c})`,
      () => `softmax(${c}, axis: -1)`,
      () => `log_softmax(${c}, axis: -1)`,
      () => `logsumexp(${c}, axis: -1, keepdims: true) - ${c}`,
      () => `${c} - mean(${c}, axis: -1, keepdims: true)`,
      () => `${c} * ${pick(['max', 'min', 'sum', 'mean'])}(${c}, axis: ${pick(['0', '-1', '1'])}, keepdims: true)`,
      () => `${c} + ${pick(['max', 'min', 'sum', 'mean'])}(${c})`,
      () => `cumsum(${c}, axis: -1${pick(['', ', reverse: true'])})`,
      () => {
        const layer = pick(['LayerNorm', 'RMSNorm', 'BatchNorm']);
        uses.add(layer);
        lines.push(`layer L${v} = ${layer}(${F})`);
        return `L${v}(${c})`;
      },
      () => {
        const out = int(2, 6);
        lines.push(`layer L${v} = Dense(${F}, ${out}${pick(['', ', bias: false'])})`);
        features = out;
        return `L${v}(${c})`;
      },
      () => {
        const out = int(2, 6);
        lines.push(`param W${v}: f32[${F}, ${out}] = glorot_uniform`);
        features = out;
        return pick([`${c} @ W${v}`, `matmul(${c}, W${v})`, `einsum("bi,ij->bj", ${c}, W${v})`, `einsum("ij,bi->bj", W${v}, ${c})`]);
      },
      () => {
        // a matmul whose epilogue adds a one-column slice broadcast over the output's columns
        const out = int(2, 6);
        const column = int(0, F - 1);
        lines.push(`param W${v}: f32[${F}, ${out}] = glorot_uniform`);
        features = out;
        return `${c} @ W${v} + ${pick([`${c}[:, ${column}:${column + 1}]`, `${c}[:, ${column}][:, None]`])}`;
      },
      () => {
        if (F > 12) return null;
        features = F * 2;
        return `concat([${c}, ${c} * ${c}], axis: -1)`;
      },
      () => {
        if (F < 3) return null;
        features = F - 1;
        return pick([`${c}[:, 1:]`, `${c}[:, :-1]`]);
      },
      () => {
        if (F < 4) return null;
        features = Math.ceil(F / 2);
        return `${c}[:, ::2]`;
      },
      () => {
        const before = int(0, 2);
        const after = int(0, 2);
        features = F + before + after;
        return `pad(${c}, [0, ${before}], [0, ${after}]${pick(['', ', value: 0.5'])})`;
      },
      () => {
        if (F % 2) return null;
        lines.push(`let ${v}a, ${v}b = split(${c}, 2)`);
        features = F / 2;
        return `${v}a * sigmoid(${v}b)`;
      },
      () => (F % 2 ? null : `reshape(${pick(['transpose', 'permute'])}(reshape(${c}, [B, 2, ${F / 2}]), [0, 2, 1]), [B, ${F}])`),
      () => `${c} * reshape(${c}[:, 0], [B, 1])`,
      () => {
        const axis = pick(['0', '1', '2']);
        return `sum(stack([${c}, ${c} * 2.0, ${c} * ${c}], axis: ${axis}), axis: ${axis})`;
      },
      () => `take_along_axis(${c}, argmax(${c}, axis: -1)[:, None], axis: -1) + ${c}`,
      () => `${c} * one_hot(argmax(${c}, axis: -1), ${F})`,
      () => `reshape(${c}[:, None, :] @ ${c}[:, :, None], [B, 1]) + ${c}`,
      () => `sum(einsum("bi,bj->bij", ${c}, ${c}), axis: ${pick(['1', '2'])})`,
      // the step functions' jumps sit at 0.63 rather than 0: a value exactly 0 in float64 (the last
      // cumsum of mean-centred values) is a rounding error away from it in f32, on either side
      () => `${c} * cast(${c} > 0.0, f32) + ${pick(['floor', 'ceil', 'sign'])}(stop_gradient(${c}) - 0.63)`,
    ];
    let expression: string | null = null;
    while (expression === null) expression = pick(ops)();
    lines.push(`let ${v} = ${expression}`);
    current = v;
  }

  // the head: a Dense to C classes or targets, a loss and a metric
  const head = pick(['ce', 'ce', 'ce_smoothed', 'nll', 'mse', 'bce', 'huber', 'l1', 'kl']);
  const classes = int(2, 4);
  lines.push(`layer head = Dense(${features}, ${classes})`, `let logits = head(${current})`, 'output out = logits');
  if (head === 'ce' || head === 'ce_smoothed' || head === 'nll') {
    inputs.push('input label: i32[B]');
    intRange.label = classes;
    lines.push(
      head === 'ce'
        ? 'loss = cross_entropy(logits, label)'
        : head === 'nll'
          ? 'loss = nll(log_softmax(logits, axis: -1), label)'
          : `loss = cross_entropy(logits, label, label_smoothing: 0.1${pick(['', ', ignore_index: 0'])})`,
    );
    lines.push(pick(['metric acc = accuracy(logits, label)', 'metric f = f1(logits, label, average: "macro")', 'metric p = precision(logits, label, positive: 1)', 'metric top = top_k_accuracy(logits, label, k: 2)']));
  } else {
    inputs.push(`input target: f32[B, ${classes}]`);
    const loss = { mse: 'mse(logits, target)', bce: 'binary_cross_entropy(logits, target)', huber: 'huber(logits, target, delta: 0.5)', l1: 'l1(logits, target)', kl: 'kl_normal(logits, target)' }[head];
    lines.push(`loss = ${loss}`, 'metric gap = mean(abs(logits - target))');
  }
  const body = [...inputs, ...lines].map((l) => `  ${l}`).join('\n');
  const source = `// generated by test/dl-gen.ts: seed ${seed}, stem ${stem}\nuse std.nn.{${[...uses].join(', ')}}\n\nmodel M {\n${body}\n}\n\ntrain M {\n  optimizer = sgd(lr: ${LEARNING_RATE}.0)\n  batch = ${BATCH}\n}\n`;
  return { seed, stem, source, intRange, batch: BATCH };
}
