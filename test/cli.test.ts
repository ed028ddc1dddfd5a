// The dlc command line, in process: exit codes, check output, fmt --check/--write, explain, JSON diagnostics.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT_FMT_FAILED, EXIT_INTERNAL_ERROR, EXIT_OK, EXIT_USER_ERROR, main } from '../compiler/cli/main.ts';
import { CODES } from '../compiler/diagnostics/codes.ts';

async function run(...args: string[]): Promise<{ status: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const status = await main(['node', 'dlc', ...args], { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`) });
  return { status, out, err };
}

function tempFile(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'dlc-cli-'));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const BROKEN = `model M {
  input x: f32[B, 3]
  let y = rleu(x)
  laye fc = Dense(3, 4)
}

train M {
  epoch = 3
}
`;

describe('dlc check', () => {
  it('says when a file could not be read, not "0 errors"', async () => {
    const r = await run('check', '/nonexistent/model.dl');
    expect(r.status).toBe(EXIT_USER_ERROR);
    expect(r.err).toContain('error: cannot read `/nonexistent/model.dl`: there is no such file');
    expect(r.err).toContain('1 file could not be read');
    expect(r.err).not.toContain('0 errors');
    const folder = await run('check', 'examples');
    expect(folder.err).toContain('error: cannot read `examples`: it is a folder; give the .dl file in it');
  });

  it('exits 0 on the examples', async () => {
    const examples = ['mnist_mlp', 'lenet', 'resnet', 'lstm_classifier', 'char_transformer', 'gan', 'autoencoder', 'reinforce_cartpole', 'a2c_pendulum'];
    const r = await run('check', ...examples.map((e) => `examples/${e}.dl`));
    expect(r.err).toContain('no errors');
    expect(r.status).toBe(EXIT_OK);
  });

  it('exits 1 and renders every error as a code frame with the code, location, caret and help', async () => {
    const file = tempFile('broken.dl', BROKEN);
    const r = await run('check', file);
    expect(r.status).toBe(EXIT_USER_ERROR);
    expect(r.err).toContain('error[E0011]: unknown keyword `laye`');
    expect(r.err).toContain(`--> ${file}:4:3`);
    expect(r.err).toMatch(/> 4 \|   laye fc = Dense\(3, 4\)\n\s+\|   \^\^\^\^/);
    expect(r.err).toContain('= help: did you mean `layer`?');
    expect(r.err).toContain('error[E0204]: unknown setting `epoch`');
    expect(r.err).toContain('= help: did you mean `epochs`?');
    expect(r.err).not.toMatch(/\bat .*\.ts:\d+/); // no stack trace
  });

  it('prints JSON diagnostics with line and column spans', async () => {
    const file = tempFile('broken.dl', BROKEN);
    const r = await run('check', '--json', file);
    expect(r.status).toBe(EXIT_USER_ERROR);
    const diagnostics = JSON.parse(r.out) as { code: string; span: { start: { line: number; column: number } }; help?: string }[];
    const laye = diagnostics.find((d) => d.code === 'E0011')!;
    expect(laye.span.start).toMatchObject({ line: 4, column: 3 });
    expect(laye.help).toBe('did you mean `layer`?');
    for (const d of diagnostics) expect(Object.keys(CODES)).toContain(d.code);
  });

  it('checks standard input (`-`), named and resolving its imports by --stdin-filepath', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlc-cli-'));
    writeFileSync(join(dir, 'blocks.dl'), 'layer Blk {\n  forward(x: f32[B, 4]) -> f32[B, 4] = x\n}\n');
    const buffer = 'use "./blocks.dl".{Blk}\n\nmodel M {\n  input x: f32[B, 4]\n  layer b = Blk()\n  output y = b(x) + zz\n}\n';
    let out = '';
    const status = await main(['node', 'dlc', 'check', '--json', '--stdin-filepath', join(dir, 'm.dl'), '-'], { out: (t) => (out += t), err: () => {}, readStdin: () => buffer });
    expect(status).toBe(EXIT_USER_ERROR);
    const diagnostics = JSON.parse(out) as { code: string; span: { file: string; start: { line: number; column: number } } }[];
    // the import resolved beside the named file: the only error is the unknown name
    expect(diagnostics.map((d) => [d.code, d.span.file, d.span.start.line, d.span.start.column])).toEqual([['E0201', join(dir, 'm.dl'), 6, 21]]);
  });

  it('with --json, a file it cannot read is an entry of its own (no code), not `[]` for a clean file', async () => {
    const r = await run('check', '--json', '/nonexistent/model.dl');
    expect(r.status).toBe(EXIT_USER_ERROR);
    const entries = JSON.parse(r.out) as { code: string | null; severity: string; message: string; span: { file: string } }[];
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ code: null, severity: 'error', message: 'cannot read `/nonexistent/model.dl`: there is no such file', span: { file: '/nonexistent/model.dl' } });
  });

  it('--help lists compile and gradcheck as taking a file, which they need', async () => {
    const r = await run('--help');
    expect(r.out).toContain('compile [options] <file>');
    expect(r.out).toContain('gradcheck [options] <file>');
    expect(r.out).toContain('check [options] <files...>');
    expect(r.out).toContain('explain [options] [code]');
  });

  it('exits 1 for a missing file without a stack trace', async () => {
    const r = await run('check', '/nonexistent/model.dl');
    expect(r.status).toBe(EXIT_USER_ERROR);
    expect(r.err).toContain('cannot read');
  });

  it('turns an internal failure into exit 2 with a one-line message', async () => {
    let err = '';
    const status = await main(['node', 'dlc', 'explain', 'E0201'], {
      out: () => {
        throw new Error('simulated failure');
      },
      err: (t) => (err += t),
    });
    expect(status).toBe(EXIT_INTERNAL_ERROR);
    expect(err).toContain('internal compiler error: simulated failure');
  });

  it('frames the line the error is on when a comment holds a line or paragraph separator (U+2028, U+2029)', async () => {
    const file = tempFile('ls.dl', 'model M {\n  // one\u2028two\u2029three\n  input x: f32[B, 4]\n  output y = x @ x\n}\n');
    const r = await run('check', file);
    expect(r.status).toBe(EXIT_USER_ERROR);
    expect(r.err).toContain(`--> ${file}:4:14`);
    expect(r.err).toContain('> 4 |   output y = x @ x');
  });

  it('survives hostile files', async () => {
    const files = [
      tempFile('deep.dl', `model M { let x = ${'('.repeat(10000)}1${')'.repeat(10000)} }`),
      tempFile('binary.dl', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)).toString('latin1')),
      tempFile('empty.dl', ''),
    ];
    for (const f of files) {
      const r = await run('check', f);
      expect([EXIT_OK, EXIT_USER_ERROR]).toContain(r.status);
    }
  });
});

describe('dlc fmt', () => {
  it('--check passes on the canonical examples and fails on unformatted text', async () => {
    expect((await run('fmt', '--check', 'examples/mnist_mlp.dl')).status).toBe(EXIT_OK);
    const file = tempFile('ugly.dl', 'model   M{input x:f32[B,3]\noutput y=relu( x )*2}\n');
    const r = await run('fmt', '--check', file);
    expect(r.status).toBe(EXIT_USER_ERROR);
    expect(r.err).toContain(`not formatted: ${file}`);
  });

  it('--write rewrites in place, keeps comments, and is idempotent', async () => {
    const file = tempFile('ugly.dl', '// a model\nmodel   M{input x:f32[B,3] // the input\noutput y=relu( x )*2}\n');
    expect((await run('fmt', '--write', file)).status).toBe(EXIT_OK);
    const once = readFileSync(file, 'utf8');
    expect(once).toBe('// a model\nmodel M {\n  input x: f32[B, 3] // the input\n  output y = relu(x) * 2\n}\n');
    expect((await run('fmt', '--check', file)).status).toBe(EXIT_OK);
  });

  it('refuses to format a file with syntax errors', async () => {
    const file = tempFile('broken.dl', 'model M { let = }\n');
    const r = await run('fmt', '--write', file);
    expect(r.status).toBe(EXIT_FMT_FAILED);
    expect(readFileSync(file, 'utf8')).toBe('model M { let = }\n');
  });
});

describe('dlc explain', () => {
  it('explains every registered code', async () => {
    for (const code of Object.keys(CODES)) {
      const r = await run('explain', code);
      expect(r.status).toBe(EXIT_OK);
      expect(r.out).toContain(code);
      expect(r.out.length).toBeGreaterThan(40);
    }
  });

  it("docs/language.md's diagnostics table lists every code with its title", () => {
    const docs = readFileSync('docs/language.md', 'utf8');
    const table = [...docs.slice(docs.indexOf('## 13. Diagnostics')).matchAll(/^\| ([EW]\d{4}) \| ([^|]+?)( \(a warning\))? \|$/gm)].map((m) => [m[1], m[2]]);
    expect(table).toEqual(Object.entries(CODES).map(([code, info]) => [code, info.title]));
  });

  it('rejects an unknown code', async () => {
    expect((await run('explain', 'E9999')).status).toBe(EXIT_USER_ERROR);
  });
});

describe('dlc graph and dlc summary', () => {
  it('prints the typed IR of a model', async () => {
    const r = await run('graph', 'examples/mnist_mlp.dl');
    expect(r.status).toBe(EXIT_OK);
    expect(r.out).toContain('graph MnistMlp {');
    expect(r.out).toMatch(/input  %\d+: f32\[B, 784\]  \/\/ image/);
    expect(r.out).toMatch(/param  %\d+: f32\[784, 512\] = glorot_uniform  \/\/ net\.hidden\.0\.w/);
    // (the train block's hidden: 512, not the default 128)
    expect(r.out).toMatch(/= matmul\(%\d+, %\d+\)/);
    expect(r.out).toContain('loss   loss = %');
  });

  it('emits Graphviz with shapes on the edges', async () => {
    const r = await run('graph', '--dot', 'examples/lenet.dl');
    expect(r.status).toBe(EXIT_OK);
    expect(r.out).toMatch(/^digraph "LeNet" \{/);
    expect(r.out).toContain('"input_image" -> "call_0" [label="f32[B, 1, 28, 28]"]');
    expect(r.out).toContain('label="fc1\\nDense"');
    expect(r.out).toMatch(/-> "loss_loss"/);
  });

  it('summarizes layers, output shapes and parameter counts', async () => {
    const r = await run('summary', 'examples/lenet.dl');
    expect(r.status).toBe(EXIT_OK);
    expect(r.out).toMatch(/fc1 \(Dense\)\s+\[B, 120\]\s+48,120/);
    expect(r.out).toContain('Total params: 61,706');
    // a model with a train block is summarized as the block builds it
    const file = tempFile('h.dl', 'use std.nn.{Dense}\nmodel M(h: int = 4) {\n  input x: f32[B, 2]\n  layer fc = Dense(2, h)\n  loss = mean(fc(x) ** 2)\n}\ntrain M(h: 8) {\n  optimizer = sgd(lr: 0.1)\n}\n');
    expect((await run('summary', file)).out).toContain('Total params: 24');
  });

  it('--weights lists the tensors a weights file holds: path, dtype and shape, parameter or state, without the run\'s state', async () => {
    const file = tempFile('w.dl', 'use std.nn.{Dense, BatchNorm}\nmodel M {\n  input x: f32[B, 3]\n  layer fc = Dense(3, 2)\n  layer bn = BatchNorm(2)\n  output y = bn(fc(x))\n  loss = mean(y ** 2)\n}\ntrain M {\n  optimizer = adam(lr: 0.1)\n}\n');
    const r = await run('summary', file, '--weights');
    expect(r.status, r.err).toBe(EXIT_OK);
    expect(r.out.trimEnd().split('\n')).toEqual([
      'Model: M (6 tensors)',
      'fc.w             f32[3, 2]  param',
      'fc.b             f32[2]     param',
      'bn.gamma         f32[2]     param',
      'bn.beta          f32[2]     param',
      'bn.running_mean  f32[2]     state',
      'bn.running_var   f32[2]     state',
    ]);
  });

  it('reports shape errors instead of a graph', async () => {
    const file = tempFile('shape.dl', 'model M {\n  input image: f32[B, 784]\n  param w: f32[748, 10] = glorot_uniform\n  output y = image @ w\n}\n');
    const r = await run('graph', file);
    expect(r.status).toBe(EXIT_USER_ERROR);
    expect(r.err).toContain('error[E0301]: matmul inner dimensions differ: f32[B, 784] @ f32[748, 10]');
    expect(r.err).toContain('`w` is declared here');
  });
});

describe('dlc graph --train and dlc gradcheck', () => {
  it('prints one training graph per step, with parameter updates', async () => {
    const r = await run('graph', '--train', 'examples/gan.dl');
    expect(r.status).toBe(EXIT_OK);
    expect(r.out).toContain('graph Gan.discriminator {');
    expect(r.out).toContain('graph Gan.generator {');
    expect(r.out).toMatch(/update D\.\S+ = %\d+/);
    expect(r.out).toMatch(/state  %\d+: f32\[\] = zeros  \/\/ opt\.discriminator\.t/);
  });

  it('reports the relative error per parameter and passes on a correct model', async () => {
    const r = await run('gradcheck', 'examples/mnist_mlp.dl', '--args', 'hidden: 4', '--seed', '3');
    expect(r.status).toBe(EXIT_OK);
    expect(r.out).toMatch(/net\.hidden\.0\.w\s+-?\d\.\d+e[+-]\d+\s+-?\d\.\d+e[+-]\d+\s+\d\.\de[+-]\d+/);
    expect(r.out).toMatch(/worst relative error: \d\.\d+e-\d+ \(tolerance 0\.0001\)/);
  });

  it('rejects unreadable --args with a clear message', async () => {
    const r = await run('gradcheck', 'examples/mnist_mlp.dl', '--args', 'hidden 4');
    expect(r.status).toBe(EXIT_USER_ERROR);
    expect(r.err).toContain('cannot read --args');
  });

  it('takes the file after --size (the list flag took it: "missing required argument \'file\'"), and says where to put it when there is none', async () => {
    const r = await run('gradcheck', '--size', 'B=2', 'examples/mnist_mlp.dl', '--args', 'hidden: 2');
    expect([r.status, r.out.split('\n')[0]], r.err).toEqual([EXIT_OK, 'MnistMlp: d loss / d parameter, seed 1, sizes B=2']);
    const none = await run('gradcheck', '--size', 'B=2');
    expect([none.status, none.err.trim()]).toEqual([EXIT_USER_ERROR, "error: missing required argument 'file' (write it before --size, whose values run to the next flag: dlc ... file.dl --size B=2)"]);
    const report = await run('compile', '--report', '--report-size', 'L=2', 'nowhere.dl');
    expect(report.err).toContain('nowhere.dl');
    expect(report.err).not.toContain('missing required argument');
  });

  it('warns of parameters the random inputs do not reach, and feeds whole numbers to a float input cast to integers', async () => {
    const idle = await run('gradcheck', tempFile('idle.dl', 'model I {\n  input x: f32[B, 4]\n  param w: f32[4] = ones\n  param u: f32[4] = ones\n  loss = mean(x * w) + mean(relu(-1.0 - u * u))\n}\n'));
    expect(idle.status, idle.err).toBe(EXIT_OK);
    expect(idle.err).toContain('warning: 1 of 2 parameters not exercised by the random inputs (their gradient is 0 both ways, so nothing was checked): u');
    // token ids read as floats (csv()) and cast: drawn in (-1, 1) every id and mask was 0, and the embedding went unchecked
    const tokens = 'use std.nn.{Embedding}\nmodel T {\n  input features: f32[B, 3]\n  layer emb = Embedding(4, 2)\n  let ids = cast(features, i32)\n  loss = mean(emb(ids) * cast(ids > 0, f32)[:, :, None])\n}\n';
    const cast = await run('gradcheck', tempFile('cast.dl', tokens), '--size', 'B=4');
    expect(cast.status, cast.err).toBe(EXIT_OK);
    expect(cast.err).toContain('note: `features` is cast to integers, so it gets whole numbers (0 or 1), as integer inputs do');
    expect(cast.err).not.toContain('not exercised');
    expect(cast.out).toMatch(/^emb\.weight\s+-?[1-9]/m);
    // a target network read only through stop_gradient: no seed reaches it, so the note says why, not "try another --seed"
    const apart = 'use std.nn.{Dense}\nmodel Q {\n  input x: f32[B, 3]\n  layer online = Dense(3, 2)\n  layer target = Dense(3, 2)\n  loss = mean((online(x) - stop_gradient(target(x))) ** 2)\n}\n';
    const q = await run('gradcheck', tempFile('apart.dl', apart));
    expect(q.status, q.err).toBe(EXIT_OK);
    expect(q.err).toContain('note: 2 of 4 parameters have no differentiable path to `loss` (read only through stop_gradient, argmax or a comparison, or not at all), so their gradient is 0 for any input: target.w, target.b');
    expect(q.err).not.toContain('not exercised');
  });

  // regression: gradcheck checked each loss only, never the expression a step minimizes (a metric inside it is differentiated too)
  it("checks each step's objective expression over the parameters that step updates", async () => {
    const src = `use std.nn.{Dense}
model S {
  input x: f32[B, 3]
  input label: i32[B]
  layer enc = Dense(3, 4)
  layer cls = Dense(4, 3)
  layer reg = Dense(4, 1)
  let logits = cls(tanh(enc(x)))
  loss ce = cross_entropy(logits, label)
  loss r = mean(reg(tanh(enc(x))) ** 2)
  metric ent = -mean(sum(softmax(logits) * log_softmax(logits), axis: -1))
}
train S {
  step classify {
    minimize ce - 0.1 * ent with sgd(lr: 0.1)
    freeze reg
  }
  step regress {
    minimize r over reg with sgd(lr: 0.1)
  }
}
`;
    const r = await run('gradcheck', tempFile('objective.dl', src));
    expect(r.status, r.err).toBe(EXIT_OK);
    const headers = r.out.split('\n').filter((l) => l.startsWith('S: d '));
    expect(headers.map((h) => h.replace(/, seed.*/, ''))).toEqual(['S: d ce / d parameter', 'S: d r / d parameter', 'S: d classify_objective / d parameter of the step `classify`']);
    const objective = r.out.slice(r.out.indexOf('S: d classify_objective'));
    expect(objective.split('\n').slice(2, 6).map((l) => l.split(/\s+/)[0])).toEqual(['enc.w', 'enc.b', 'cls.w', 'cls.b']);
    expect(objective).toMatch(/^cls\.w\s+-?[1-9]/m);
  });

  it('measures a row again with a finer step where the loss has a kink within the step (a ResNet\'s relus failed at 0.87)', async () => {
    // floor(w * 1e6) has a jump every 1e-6: the quotient at step 1e-6 measures the jumps, at 1e-8 the slope
    const kinked = await run('gradcheck', tempFile('kink.dl', 'model K {\n  input x: f32[B, 3]\n  param w: f32[3] = glorot_uniform\n  loss = sum(x * w) + sum(abs(w - floor(w * 1.0e6) / 1.0e6))\n}\n'), '--size', 'B=2');
    expect(kinked.status, kinked.err).toBe(EXIT_OK);
    expect(kinked.out).toMatch(/^w\s+\S+\s+\S+\s+\S+ {2}\(step 1e-8\)$/m);
    expect(kinked.err).toContain('note: 1 of 1 rows were over the tolerance at step 1e-6 and within it at step 1e-8 (marked)');
  });

  it('rejects bad --size, --seed and --tol values and sizes the model lacks, and refuses tensors too large to interpret', async () => {
    const cases: [string[], string][] = [
      [['--size', 'B=-1'], 'error: --size takes NAME=n with a whole n of 1 or more (B=4), not `B=-1`'],
      [['--size', 'B'], 'error: --size takes NAME=n with a whole n of 1 or more (B=4), not `B`'],
      [['--size', 'B=0'], 'error: --size takes NAME=n with a whole n of 1 or more (B=4), not `B=0`'],
      [['--size', 'Q=3'], 'error: --size Q: MnistMlp has no size `Q`; its sizes are B'],
      [['--seed', 'abc'], 'error: --seed takes a whole number of 0 or more, not `abc`'],
      [['--tol', '-1'], 'error: --tol takes a positive number, not `-1`'],
    ];
    for (const [flags, message] of cases) {
      const r = await run('gradcheck', 'examples/mnist_mlp.dl', '--args', 'hidden: 4', ...flags);
      expect([r.status, r.err.trim()], flags.join(' ')).toEqual([EXIT_USER_ERROR, message]);
    }
    const huge = tempFile('huge.dl', 'model M {\n  input x: f32[B, 4]\n  param w: f32[4] = ones\n  loss = mean(x * w) + mean(cast(arange(20000000), f32))\n}\n');
    const r = await run('gradcheck', huge);
    // (20 million f32s fit one storage binding, so this is gradcheck's own limit, not check's E0401)
    expect([r.status, r.err.trim()]).toEqual([EXIT_USER_ERROR, 'error: M has a tensor of 20,000,000 elements at B=2; gradcheck interprets in float64 and takes at most 16,777,216 (use smaller --args or --size)']);
    // sizes that break a condition of the model are the user's to change (it was an internal compiler error)
    const table = tempFile('table.dl', 'model T {\n  input tokens: i32[B, L]\n  param pos: f32[4, 2] = ones\n  loss = mean(pos[:L - 1]) + mean(cast(tokens, f32))\n}\n');
    const broken = await run('gradcheck', table, '--size', 'B=1', '--size', 'L=9');
    // as a code frame at the condition, with a code (it was a bare `error:` line)
    expect(broken.status).toBe(EXIT_USER_ERROR);
    expect(broken.err).toContain('error[E0304]: T needs `4 >= L - 1`, which is false at B=1 L=9');
    expect(broken.err).toContain('table.dl:4:19');
    expect(broken.err).toMatch(/\^{6} 4 >= 8 is false/);
    expect(broken.err).toContain('= help: give sizes that satisfy it with --size');
    // default sizes the model's own `where` refuses are raised to the smallest that fit (H=3 broke H % 2 == 0)
    const pooled = tempFile('pooled.dl', 'model P {\n  input x: f32[B, H]\n  where H % 4 == 0\n  param w: f32[4] = ones\n  loss = mean(reshape(x, [B, H / 4, 4]) * w)\n}\n');
    const raised = await run('gradcheck', pooled);
    expect([raised.status, raised.err.trim()]).toEqual([EXIT_OK, "note: H=4 instead of the default H=3, which breaks P's `H % 4 == 0` (3 == 0 is false); give other sizes with --size"]);
    expect(raised.out).toContain('sizes B=2 H=4');
    const never = await run('gradcheck', tempFile('never.dl', 'model N {\n  input x: f32[B, H]\n  where H % 2 == 0, H % 2 == 1\n  param w: f32[2] = ones\n  loss = mean(reshape(x, [B, H / 2, 2]) * w)\n}\n'));
    expect(never.status).toBe(EXIT_USER_ERROR);
    expect(never.err).toContain('error[E0304]: N needs `H % 2 == 0`, which is false at B=2 H=3');
    expect(never.err).toContain('never.dl:3:9');
    expect(never.err).toContain('= help: no sizes near the defaults satisfy it: give sizes that do with --size (--size H=n)');
    // a file with nothing to differentiate is not a pass (it printed a worst error of 0 and exited 0)
    const nothing = await run('gradcheck', tempFile('noloss.dl', 'model G {\n  input x: f32[B, 2]\n  output y = x * 2.0\n}\n'));
    expect([nothing.status, nothing.err.trim().split('\n').at(-1)]).toEqual([EXIT_USER_ERROR, 'error: nothing to check: `G` has no loss with a parameter to differentiate']);
    // a true gradient of 0 measured as rounding noise (1e-11) passes (it was a relative error of 1)
    const zero = await run('gradcheck', tempFile('zero.dl', 'model Z {\n  input x: f32[B, 4]\n  param w: f32[4] = ones\n  loss = mean(softmax(x * w, axis: -1))\n}\n'), '--size', 'B=2');
    expect(zero.status, zero.out).toBe(EXIT_OK);
    expect(zero.out).toMatch(/^w\s+0\.000000e\+0\s+-?\d\.\d+e-1\d\s+\d\.\de-([5-9]|\d\d)$/m);
  });
});

describe('models as their train block and --args make them', () => {
  it('a hyperparameter without a default, given by the train block, and defaults that break a where, fixed by --args', async () => {
    const required = tempFile('req.dl', 'use std.nn.{MultiHeadAttention}\nmodel M(d: int, heads: int = 3) {\n  input x: f32[B, L, d]\n  layer attn = MultiHeadAttention(d, heads)\n  loss = mean(attn(x))\n}\ntrain M(d: 12) {\n  optimizer = adam(lr: 1e-3)\n}\n');
    expect((await run('check', required)).status).toBe(EXIT_OK);
    const broken = tempFile('where.dl', 'use std.nn.{MultiHeadAttention}\nmodel M(d: int = 10, heads: int = 3) {\n  input x: f32[B, L, d]\n  layer attn = MultiHeadAttention(d, heads)\n  loss = mean(attn(x))\n}\n');
    expect((await run('check', broken)).err).toContain('constraint `d % heads == 0` is false (d = 10, heads = 3)');
    const fixed = await run('gradcheck', broken, '--args', 'd: 12', '--size', 'B=2', 'L=2');
    expect(fixed.status, fixed.err).toBe(EXIT_OK);
    const summary = await run('summary', broken, '--args', 'd: 6, heads: 2');
    expect(summary.status, summary.err).toBe(EXIT_OK);
    expect(summary.out).toMatch(/Total params: 168\b/);
  });
});

describe('--args by position', () => {
  it("replaces the train block's argument of that hyperparameter, as --args by name does", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlc-args-'));
    const r = await run('compile', 'examples/mnist_mlp.dl', '-o', dir, '--args', '24');
    expect(r.status, r.err).toBe(EXIT_OK);
    expect(readFileSync(join(dir, 'mnist_mlp.ts'), 'utf8')).toMatch(/f32\[784, 24\]/);
  });
});

describe('dlc --version and fmt flags', () => {
  it('prints the version, and refuses --check with --write', async () => {
    const v = await run('--version');
    expect([v.status, v.out.trim()]).toEqual([EXIT_OK, JSON.parse(readFileSync('package.json', 'utf8')).version]);
    const size = await run('compile', 'examples/mnist_mlp.dl', '-o', join(tmpdir(), 'dlc-report-size'), '--args', 'hidden: 4', '--report', '--report-size', 'Q=5');
    expect([size.status, size.err.trim()]).toEqual([EXIT_USER_ERROR, 'error: --report-size Q: no model here has a size `Q`; their sizes are B']);
    const both = await run('fmt', '--check', '--write', 'examples/gan.dl');
    expect(both.status).toBe(EXIT_FMT_FAILED);
    expect(both.err).toContain('--check and --write ask for different things');
  });
});

describe('dlc compile output folder', () => {
  it('a file where the folder should be is one line and exit 1, not an internal error', async () => {
    const file = tempFile('afile', '');
    for (const out of [file, join(file, 'sub')]) {
      const r = await run('compile', 'examples/mnist_mlp.dl', '-o', out, '--args', 'hidden: 4');
      expect(r.status).toBe(EXIT_USER_ERROR);
      expect(r.err.trim()).toMatch(new RegExp(`^error: cannot write to \`${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\`: (it is a file, not a folder|a part of the path is a file, not a folder)$`));
    }
  });
});

describe('dlc compile --no-fuse', () => {
  it('writes one kernel per primitive op, so a user can compare the fused module with the unfused one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlc-nofuse-'));
    const file = join(dir, 'm.dl');
    writeFileSync(file, 'model M {\n  input x: f32[B, 2]\n  input m: f32[B, 3]\n  param w: f32[2, 2] = zeros\n  output o = relu(x @ w + m[:, 1:2])\n}\n');
    const fused = await run('compile', file, '-o', join(dir, 'fused'));
    const plain = await run('compile', file, '-o', join(dir, 'plain'), '--no-fuse');
    expect([fused.status, plain.status]).toEqual([EXIT_OK, EXIT_OK]);
    const shaders = (r: { err: string }) => Number(/: (\d+) shaders\)/.exec(r.err)?.[1]);
    expect(shaders(plain)).toBeGreaterThan(shaders(fused));
    expect(readFileSync(join(dir, 'plain', 'm.ts'), 'utf8')).not.toContain('fused_matmul');
    expect(readFileSync(join(dir, 'fused', 'm.ts'), 'utf8')).toContain('fused_matmul');
  });
});

describe('local imports', () => {
  it('a model built from a layer in another file checks and elaborates', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlc-import-'));
    writeFileSync(join(dir, 'blocks.dl'), 'use std.nn.{Dense}\n\nlayer Block(n: int) {\n  layer fc = Dense(n, n)\n  forward(x: f32[B, n]) -> f32[B, n] = x + relu(fc(x))\n}\n');
    writeFileSync(join(dir, 'model.dl'), 'use "./blocks.dl".{Block}\n\nmodel M {\n  input x: f32[B, 4]\n  layer b = Block(4)\n  output y = b(x)\n}\n');
    const r = await run('graph', join(dir, 'model.dl'));
    expect(r.err).toBe('');
    expect(r.status).toBe(EXIT_OK);
    expect(r.out).toContain('// b.fc.w');
    // and compiles to a module (the compiler elaborates with the imported modules, as checking does)
    const compiled = await run('compile', join(dir, 'model.dl'), '-o', dir);
    expect(compiled.err).toContain(`(M from ${join(dir, 'model.dl')}: 8 shaders)`);
    expect(compiled.status).toBe(EXIT_OK);
  });

  it('a layer from a file that imports its own layers from another file (and a cycle of imports) checks and compiles', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlc-import-'));
    writeFileSync(join(dir, 'inner.dl'), 'use std.nn.{Dense}\nuse "./outer.dl".{Outer}\n\nlayer Inner(n: int) {\n  layer fc = Dense(n, n)\n  forward(x: f32[B, n]) -> f32[B, n] = relu(fc(x))\n}\n');
    writeFileSync(join(dir, 'outer.dl'), 'use "./inner.dl".{Inner}\n\nlayer Outer(n: int) {\n  layer a = Inner(n)\n  layer b = Inner(n)\n  forward(x: f32[B, n]) -> f32[B, n] = b(a(x))\n}\n');
    writeFileSync(join(dir, 'model.dl'), 'use "./outer.dl".{Outer}\n\nmodel M {\n  input x: f32[B, 4]\n  layer o = Outer(4)\n  output y = o(x)\n}\n');
    const checked = await run('check', join(dir, 'model.dl'));
    expect(checked.err).toContain('no errors');
    const graph = await run('graph', join(dir, 'model.dl'));
    expect(graph.out).toContain('// o.b.fc.w');
    const compiled = await run('compile', join(dir, 'model.dl'), '-o', dir);
    expect(compiled.status, compiled.err).toBe(EXIT_OK);
  });

  it('each file is a scope of its own: two files\' helpers of one name stay apart, and `as` renames', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlc-import-'));
    // la's X uses la's Inner (Dense(4, 2): 10 parameters); lb's Y uses lb's Inner (4 -> 50 -> 2: 352)
    writeFileSync(join(dir, 'la.dl'), 'use std.nn.{Dense}\nlayer Inner(i: int) {\n  layer fc = Dense(i, 2)\n  forward(x: f32[B, i]) -> f32[B, 2] = fc(x)\n}\nlayer X(i: int) {\n  layer inner = Inner(i)\n  forward(x: f32[B, i]) -> f32[B, 2] = inner(x)\n}\n');
    writeFileSync(join(dir, 'lb.dl'), 'use std.nn.{Dense}\nlayer Inner(i: int) {\n  layer a = Dense(i, 50)\n  layer b = Dense(50, 2)\n  forward(x: f32[B, i]) -> f32[B, 2] = b(relu(a(x)))\n}\nlayer Y(i: int) {\n  layer inner = Inner(i)\n  forward(x: f32[B, i]) -> f32[B, 2] = inner(x)\n}\n');
    writeFileSync(join(dir, 'two.dl'), 'use "./la.dl".{X}\nuse "./lb.dl".{Y, Inner as Deep}\nuse std.nn as nn\nuse std.act.{relu as act}\n\nmodel M {\n  input x: f32[B, 4]\n  layer a = X(4)\n  layer b = Y(4)\n  layer c = Deep(4)\n  layer d = nn.Dense(4, 2)\n  output y = act(a(x) + b(x) + c(x) + d(x))\n}\n');
    const r = await run('summary', join(dir, 'two.dl'));
    expect(r.err).toBe('');
    expect(r.out).toMatch(/a \(X\)\s+\[B, 2\]\s+10\n/);
    expect(r.out).toMatch(/b \(Y\)\s+\[B, 2\]\s+352\n/);
    expect(r.out).toMatch(/c \(Inner\)\s+\[B, 2\]\s+352\n/);
    expect(r.out).toMatch(/d \(Dense\)\s+\[B, 2\]\s+10\n/);
    // a renamed library layer is that layer, not the one of its new name
    writeFileSync(join(dir, 'renamed.dl'), 'use std.nn.{Conv2d as Dense}\nmodel M {\n  input x: f32[B, 4]\n  layer net = Dense(4, 2)\n  output y = net(x)\n}\n');
    expect((await run('check', join(dir, 'renamed.dl'))).err).toContain('`Conv2d` needs the argument `kernel`');
  });
});

describe('max_batch in dlc train', () => {
  it('--batch over the train block\'s max_batch is refused before training, saying how to fix it', { timeout: 120_000 }, async () => {
    const file = tempFile('maxb.dl', readFileSync('examples/mnist_mlp.dl', 'utf8').replace(/\n  batch = \d+/, '\n  batch = 16\n  max_batch = 16'));
    const r = await run('train', file, '--args', 'hidden: 4', '--limit', '200', '--batch', '64', '--epochs', '1', '--no-progress', '--checkpoint', join(mkdtempSync(join(tmpdir(), 'dlc-maxb-')), 'ck.safetensors'));
    expect(r.status).toBe(EXIT_USER_ERROR);
    expect(r.err).toContain("batches of 64 (--batch) are over the train block's max_batch = 16, the largest batch MnistMlp allocates buffers for; train with --batch 16 or less");
  });
});

describe('the model\'s conditions on B and data-fixed sizes in dlc train', () => {
  it('every batch size a run will use is checked before a checkpoint is moved aside or a step trained, naming the split and B', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlc-bcond-'));
    // 41 rows split 32 / 4 / 5: the test split's last batch of 2 is 1
    writeFileSync(join(dir, 'd.csv'), `a,b,c,d,e,f,label\n${Array.from({ length: 41 }, (_, i) => `${i % 3},1,2,3,4,${i % 5},${i % 2}`).join('\n')}\n`);
    const file = join(dir, 'pairs.dl');
    writeFileSync(file, 'model Pairs {\n  input features: f32[B, F]\n  input label: i32[B]\n  where B % 2 == 0, F % 3 == 0\n  param w: f32[3, 2] = zeros\n  let p = reshape(mean(reshape(features, [B, F / 3, 3]), axis: 1) @ w, [B / 2, 2, 2])\n  loss = cross_entropy(reshape(p, [B, 2]), label)\n}\ntrain Pairs {\n  data = csv(path: "d.csv", label: "label")\n  optimizer = sgd(lr: 0.1)\n  batch = 2\n  epochs = 1\n}\n');
    const earlier = join(dir, 'checkpoints', 'Pairs.safetensors');
    mkdirSync(join(dir, 'checkpoints'));
    writeFileSync(earlier, 'an earlier run');
    const last = await run('train', file, '--no-progress');
    expect([last.status, last.err.trim().split('\n').at(-1)]).toEqual([
      EXIT_USER_ERROR,
      "error: with batch = 2, the test split's 5 examples leave a last batch of 1, which breaks Pairs's condition `B % 2 == 0` (B = 1: 1 == 0 is false); nothing was trained or moved aside. No batch size fits every split (training 32, validation 4, test 5): change `split` (or --limit) so that each split's size fits (every example is used: a split's last batch holds what is left over)",
    ]);
    // the earlier run's checkpoint is where it was, and nothing was set aside
    expect(readFileSync(earlier, 'utf8')).toBe('an earlier run');
    expect(readdirSync(join(dir, 'checkpoints'))).toEqual(['Pairs.safetensors']);
    // --batch replaces the block's batch = 5, which dlc check refuses (E0304), so dlc train checks the given one itself
    writeFileSync(file, readFileSync(file, 'utf8').replace('batch = 2', 'batch = 5'));
    expect((await run('check', file)).err).toContain("error[E0304]: `batch = 5` gives batches of B = 5, which breaks the model's condition `B % 2 == 0`");
    const odd = await run('train', file, '--no-progress', '--batch', '3', '--limit', '40');
    expect(odd.err.trim().split('\n').at(-1)).toBe("error: --batch 3 breaks Pairs's condition `B % 2 == 0` (B = 3: 1 == 0 is false); nothing was trained or moved aside. Train with --batch 2, which fits every batch of the splits (training 32, validation 4, test 4)");
    // the CSV's six feature columns against F % 4 (F % 3 holds)
    writeFileSync(file, readFileSync(file, 'utf8').replace('F % 3 == 0', 'F % 3 == 0, F % 4 == 0'));
    const fixed = await run('train', file, '--no-progress', '--data', `csv:${join(dir, 'd.csv')}:label`);
    expect(fixed.err.trim().split('\n').at(-1)).toBe("error: the data gives examples with F = 6, which breaks Pairs's condition `F % 4 == 0` (2 == 0 is false): train with data that fits it, or change the model's sizes");
    expect(readdirSync(join(dir, 'checkpoints'))).toEqual(['Pairs.safetensors']);
  });

  it('--limit changes the split sizes, so the block\'s iris split is not refused at compile time: the run checks its own', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlc-blimit-'));
    const file = join(dir, 'pairs.dl');
    writeFileSync(file, 'model Pairs {\n  input features: f32[B, 4]\n  input label: i32[B]\n  where B % 2 == 0\n  param w: f32[4, 3] = zeros\n  let z = reshape(features @ w, [B / 2, 2, 3])\n  loss = cross_entropy(reshape(z, [B, 3]), label)\n}\ntrain Pairs {\n  data = iris()\n  optimizer = sgd(lr: 0.1)\n  batch = 16\n  epochs = 1\n}\n');
    // 150 examples: a validation split of 15
    expect((await run('check', file)).err).toContain("the validation split's 15 examples make one batch of 15");
    // 120: 96 / 12 / 12, every batch even
    const ok = await run('train', file, '--no-progress', '--limit', '120', '--checkpoint', join(dir, 'ck.safetensors'));
    expect(ok.status, ok.err).toBe(EXIT_OK);
  });
});

describe('--data text:file:context', () => {
  it('sets the window of a text dataset from the command line, so a model with a smaller ctx trains without editing the file', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlc-text-'));
    writeFileSync(join(dir, 't.txt'), 'abcdabcdabcd\n'.repeat(150));
    const file = join(dir, 'lm.dl');
    writeFileSync(file, 'model Lm(vocab: int = 6, ctx: int = 8) {\n  input tokens: i32[B, L]\n  where L <= ctx + 1\n  layer emb = Embedding(vocab, 8)\n  param pos: f32[ctx, 8] = zeros\n  layer head = Dense(8, vocab)\n  let logits = head(emb(tokens[:, :-1]) + pos[:L - 1])\n  loss = cross_entropy(logits, tokens[:, 1:])\n}\ntrain Lm {\n  data = text(path: "t.txt", context: 9)\n  optimizer = adam(lr: 0.01)\n  batch = 16\n  epochs = 1\n}\n');
    const ok = await run('train', file, '--data', `text:${join(dir, 't.txt')}:5`, '--args', 'ctx: 4', '--no-progress', '--checkpoint', join(dir, 'ck.safetensors'));
    expect(ok.status, ok.err).toBe(EXIT_OK);
    const bad = await run('train', file, '--data', `text:${join(dir, 't.txt')}:x`, '--no-progress');
    expect([bad.status, bad.err.trim().split('\n').at(-1)]).toEqual([EXIT_USER_ERROR, `error: --data text:${join(dir, 't.txt')}:x: the third part is the context, a whole number of at least 2`]);
  });
});

describe('integer features from a CSV', () => {
  it('a value that is not whole names the CSV row it is on, not a position in a shuffled batch', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlc-csv-int-'));
    const rows = Array.from({ length: 40 }, (_, i) => `${i % 4},${(i + 1) % 4},${i % 2}`);
    rows[22] = '1,2.5,0';
    writeFileSync(join(dir, 'd.csv'), `a,b,label\n${rows.join('\n')}\n`);
    const file = join(dir, 'm.dl');
    writeFileSync(file, 'model M {\n  input features: i32[B, 2]\n  input label: i32[B]\n  layer emb = Embedding(4, 3)\n  layer head = Dense(3, 2)\n  loss = cross_entropy(head(mean(emb(features), axis: 1)), label)\n}\ntrain M {\n  data = csv(path: "d.csv", label: "label")\n  optimizer = sgd(lr: 0.1)\n  batch = 8\n  epochs = 1\n}\n');
    const bad = await run('train', file, '--no-progress', '--checkpoint', join(dir, 'ck.safetensors'));
    // the train block's data: E0207 at its setting
    expect([bad.status, bad.err.trim().split('\n')[0]]).toEqual([EXIT_USER_ERROR, `error[E0207]: input \`features\` is i32, but row 23 of ${join(dir, 'd.csv')} holds 2.5 (value 1 of its \`features\`): give whole numbers`]);
    expect(bad.err).toContain('> 9 |   data = csv(path: "d.csv", label: "label")');
  });
});

describe('dlc weights', () => {
  it("writes a checkpoint's weights-only file: saveWeights({ trainingState: false })'s tensors, batch norm's running statistics kept; it loads as the model's full weights", { timeout: 120_000 }, async () => {
    const { compileSource } = await import('../compiler/frontend/compile.ts');
    const { Model } = await import('../runtime/model.ts');
    const { decodeSafetensors } = await import('../runtime/safetensors.ts');
    const src = 'use std.nn.{BatchNorm, Dense}\nmodel Bn {\n  input x: f32[B, 3]\n  input label: i32[B]\n  layer bn = BatchNorm(3)\n  layer fc = Dense(3, 2)\n  let logits = fc(bn(x))\n  output probs = softmax(logits, axis: -1)\n  loss = cross_entropy(logits, label)\n}\ntrain Bn {\n  optimizer = adam(lr: 0.05)\n}\n';
    const program = compileSource(src, 'bn.dl').programs[0]!;
    const model = await Model.create(program, { seed: 2 });
    const x = Float32Array.from({ length: 12 }, (_, i) => Math.sin(i) * 3);
    try {
      for (let i = 0; i < 3; i++) await model.trainStep({ x, label: Int32Array.from([0, 1, 1, 0]) }).values();
      const checkpoint = tempFile('ckpt.safetensors', '');
      writeFileSync(checkpoint, await model.saveWeights());
      const out = join(checkpoint, '..', 'web', 'bn.weights.safetensors');
      const r = await run('weights', checkpoint, '-o', out);
      expect(r.status, r.err).toBe(EXIT_OK);
      expect(r.err).toMatch(/^wrote .*bn\.weights\.safetensors: 6 tensors, [\d,]+ bytes of weights; left out the training run's \d+ \(optimizer state, random key\)/);
      const written = decodeSafetensors(readFileSync(out));
      const expected = decodeSafetensors(await model.saveWeights({ trainingState: false }));
      expect([...written.tensors.keys()].sort()).toEqual([...expected.tensors.keys()].sort());
      expect([...written.tensors.keys()]).toContain('bn.running_mean');
      for (const [path, t] of expected.tensors) expect(written.tensors.get(path)!.data, path).toEqual(t.data);
      expect(written.metadata['dlc.format']).toBe('weights');
      expect(written.metadata['dlc.model']).toBe('Bn');
      expect(readFileSync(out).length).toBeLessThan(readFileSync(checkpoint).length / 2);
      // a page's model loads it whole (no partial, no weightsOnly) and predicts as the trained model
      const page = await Model.create(program, { seed: 9 });
      try {
        expect((await page.loadWeights(readFileSync(out))).missing).toEqual([]);
        expect((await page.predict({ x })).probs).toEqual((await model.predict({ x })).probs);
      } finally {
        page.dispose();
      }
      const missing = await run('weights', join(checkpoint, '..', 'nope.safetensors'), '-o', out);
      expect([missing.status, missing.err]).toEqual([EXIT_USER_ERROR, `error: cannot read ${join(checkpoint, '..', 'nope.safetensors')}: no such file\n`]);
      const garbage = tempFile('bad.safetensors', 'not a checkpoint');
      const bad = await run('weights', garbage, '-o', out);
      expect(bad.status).toBe(EXIT_USER_ERROR);
      expect(bad.err).toMatch(/is not a checkpoint dlc can read: invalid safetensors file/);
    } finally {
      model.dispose();
    }
  });
});
