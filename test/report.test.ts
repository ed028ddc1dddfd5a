// `dlc compile --report [md|html]` (compiler/report/kernels.ts): dispatches before and after fusion, the
// kernel table with FLOPs, bytes and .dl lines, peak memory; HTML well-formed and escaped; a broken
// model writes nothing.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileSource } from '../compiler/frontend/compile.ts';
import { memoryReport } from '../compiler/codegen/memory.ts';
import { buildKernelReport, fusionOf, renderHtml, renderMarkdown, type KernelReport } from '../compiler/report/kernels.ts';
import type { ModelProgram } from '../runtime/program.ts';
import { dlc, repoTempDir, ROOT } from './cli-helpers.ts';
import { argsOf } from './helpers.ts';

const FILE = 'examples/mnist_mlp.dl';
const B = 128; // the train block's batch
const HIDDEN = 16;

/** The counts test/golden/kernel-counts.json records (fusion.test.ts computes them this way): fused and unfused. */
function liveCounts(): { fused: ModelProgram; unfused: ModelProgram } {
  const text = readFileSync(join(ROOT, FILE), 'utf8');
  const modelArgs = new Map([['MnistMlp', argsOf('MnistMlp', `hidden: ${HIDDEN}`)]]);
  const program = (fuse: boolean) => compileSource(text, FILE, undefined, { modelArgs, fuse }).programs.find((p) => p.model === 'MnistMlp')!;
  return { fused: program(true), unfused: program(false) };
}

/** The rows of the Markdown table under `## title` (cells trimmed, header and rule dropped). */
function mdTable(md: string, title: string): string[][] {
  const at = md.indexOf(`\n## ${title}`);
  expect(at, `section ${title}`).toBeGreaterThanOrEqual(0);
  const lines = md.slice(at + 1).split('\n').slice(1);
  const start = lines.findIndex((l) => l.startsWith('|'));
  const rows: string[][] = [];
  for (const l of lines.slice(start)) {
    if (!l.startsWith('|')) break;
    rows.push(l.slice(1, -1).split(' | ').map((c) => c.trim()));
  }
  return rows.slice(2);
}

const num = (cell: string) => Number(cell.replace(/\*/g, '').split(' ')[0].replace(/,/g, ''));

/** Opened and closed tags balance, in order; the void tags used (meta) need no end. Returns the problems. */
function tagProblems(html: string): string[] {
  const problems: string[] = [];
  const stack: string[] = [];
  const body = html.replace(/^<!DOCTYPE html>\n/, '').replace(/<style>[\s\S]*?<\/style>/, '<style></style>');
  const re = /<(\/?)([a-zA-Z][a-zA-Z0-9]*)((?:\s+[a-z-]+="[^"<>]*")*)\s*>|<|>/g;
  for (let m = re.exec(body); m; m = re.exec(body)) {
    if (m[0] === '<' || m[0] === '>') {
      problems.push(`a bare ${m[0]} at ${m.index}: ${body.slice(Math.max(0, m.index - 30), m.index + 30)}`);
      continue;
    }
    const [, close, name] = m;
    if (name === 'meta') continue;
    if (!close) stack.push(name);
    else if (stack.pop() !== name) problems.push(`</${name}> closes the wrong tag at ${m.index}`);
  }
  if (stack.length > 0) problems.push(`unclosed: ${stack.join(', ')}`);
  return problems;
}

describe('dlc compile --report', () => {
  it('writes the Markdown report for MnistMlp: dispatch counts, the first matmul at 2*B*784*16 FLOPs, lines, peak memory', async () => {
    const dir = repoTempDir('report');
    const r = await dlc('compile', FILE, '-o', dir, '--model', 'MnistMlp', '--args', `hidden: ${HIDDEN}`, '--report');
    expect(r.status, r.err).toBe(0);
    const path = join(dir, 'mnist_mlp.report.md');
    expect(r.err).toContain(`wrote ${path}`);
    expect(existsSync(join(dir, 'mnist_mlp.ts'))).toBe(true);
    const md = readFileSync(path, 'utf8');
    expect(md).toContain('# Kernel report: MnistMlp');
    expect(md).toContain(`B=${B} (the train block's batch)`);
    expect(md).toContain(`Source: ${FILE}`);

    // dispatches before and after fusion, as kernel-counts.json counts them, per graph
    const { fused, unfused } = liveCounts();
    const golden = JSON.parse(readFileSync(join(ROOT, 'test/golden/kernel-counts.json'), 'utf8')).MnistMlp;
    const counts = Object.fromEntries(mdTable(md, 'Dispatches and fusion').map((row) => [row[0], { unfused: num(row[1]), fused: num(row[2]), groups: num(row[3]) }]));
    const want = (p: ModelProgram) => ({ predict: p.graphs.predict.kernels.length, evaluate: p.graphs.evaluate.kernels.length, steps: Object.fromEntries(p.graphs.steps.map((s) => [s.name, s.kernels.length])) });
    const got = (k: 'fused' | 'unfused') => ({ predict: counts.predict[k], evaluate: counts.evaluate[k], steps: { train: counts.train[k] } });
    expect(Object.keys(got('fused').steps)).toEqual(Object.keys(golden.fused.steps));
    expect(got('fused')).toEqual(want(fused));
    expect(got('unfused')).toEqual(want(unfused));
    expect(counts.train.groups).toBeGreaterThan(0);
    expect(md).toMatch(/### Fusion refusals: train\n\n\d+ (bindings|shape|cycle)/);

    // the training step's kernel table: the first matmul is the first layer, x[B, 784] @ w[784, 16]
    const once = fused.graphs.steps[0].kernels.filter((k) => k.once).length;
    const rows = mdTable(md, `Kernels: train (${fused.graphs.steps[0].kernels.length} dispatches${once > 0 ? `, ${once} of them once per size` : ''})`);
    const body = rows.filter((row) => row[1] !== '**total**');
    expect(body.length).toBe(fused.graphs.steps[0].kernels.length);
    // (a matmul fused with its epilogue shows its own FLOPs in the op cell: `fused_matmul: matmul (n FLOPs), add, ...`)
    const firstMatmul = body.find((row) => row[1] === 'matmul' || /\bmatmul \(/.test(row[1]))!;
    expect(firstMatmul, 'a matmul kernel').toBeDefined();
    if (firstMatmul[1] === 'matmul') {
      expect(num(firstMatmul[3])).toBe(2 * B * 784 * HIDDEN);
      expect(num(firstMatmul[4])).toBe(4 * (B * 784 + 784 * HIDDEN + B * HIDDEN));
    } else {
      expect(num(/\bmatmul \(([\d,]+) FLOPs\)/.exec(firstMatmul[1])![1])).toBe(2 * B * 784 * HIDDEN);
      const epilogue = firstMatmul[1].split(': ')[1].split(', ').length - 1;
      expect(num(firstMatmul[3])).toBe(2 * B * 784 * HIDDEN + epilogue * B * HIDDEN);
    }
    expect(body.some((row) => /^fused_\w+: /.test(row[1]))).toBe(true);
    // a fused kernel lists what it computes, never itself (the optimizer's updates are "fused_foreach: mul, ...")
    for (const row of body) {
      const [op, subs] = row[1].split(': ');
      if (subs !== undefined) expect(subs.split(', '), `kernel ${row[0]}`).not.toContain(op);
    }
    expect(body.some((row) => /^fused_foreach: mul\b/.test(row[1]))).toBe(true);
    const total = rows.find((row) => row[1] === '**total**')!;
    expect(num(total[3])).toBe(body.reduce((a, row) => a + num(row[3]), 0));

    // every .dl line named exists and is not blank
    const seen = new Set<string>();
    for (const row of body) {
      expect(row[2], `kernel ${row[0]} names its lines`).not.toBe('');
      for (const part of row[2].split('; ')) {
        const [file, first] = part.split(':');
        const path = file.includes('/') ? file : `examples/${file}`;
        const lines = readFileSync(join(ROOT, path), 'utf8').split('\n');
        for (const n of first.split(', ').map(Number)) {
          expect(Number.isInteger(n) && n >= 1 && n <= lines.length, `${path}:${n}`).toBe(true);
          expect(lines[n - 1].trim(), `${path}:${n}`).not.toBe('');
          seen.add(`${path}:${n}`);
        }
      }
    }
    expect(seen.size).toBeGreaterThan(5);

    // peak memory at B=128, planned and unplanned, as runtime/memory.ts computes it
    const mem = memoryReport(fused, { B });
    const peak = mdTable(md, `Peak memory at B=${B}`).find((row) => row[0] === '**peak bytes**')!;
    expect(num(peak[1])).toBe(mem.total);
    expect(num(peak[2])).toBe(mem.unplannedTotal);
    expect(mem.total).toBeLessThan(mem.unplannedTotal);
  });

  it('--report html writes a well-formed page; --report-batch changes the numbers', async () => {
    const dir = repoTempDir('report');
    const r = await dlc('compile', FILE, '-o', dir, '--model', 'MnistMlp', '--args', `hidden: ${HIDDEN}`, '--report', 'html', '--report-batch', '4');
    expect(r.status, r.err).toBe(0);
    const html = readFileSync(join(dir, 'mnist_mlp.report.html'), 'utf8');
    expect(tagProblems(html)).toEqual([]);
    expect(html).toMatch(/^<!DOCTYPE html>\n<html lang="en">/);
    expect(html).not.toMatch(/https?:\/\/|@import|url\(/); // no external fonts or assets
    expect(html).toContain('B=4 (given)');
    expect(html).toMatch(new RegExp(`<td class="r">${(2 * 4 * 784 * HIDDEN).toLocaleString('en-US')}</td>|matmul \\(${(2 * 4 * 784 * HIDDEN).toLocaleString('en-US')} FLOPs\\)`));
  });

  it('escapes text from the model in HTML and Markdown tables', () => {
    const report: KernelReport = {
      model: 'M<script>alert(1)</script>',
      file: 'dir/a<b>&"c\'.dl',
      batch: { value: 2, from: 'given' },
      sizes: { B: 2, L: 1 },
      defaulted: ['L'],
      graphs: [
        {
          name: 'predict',
          unfused: 2,
          dispatches: 1,
          once: 0,
          fusion: { groups: 1, fusedNodes: 2, nodesBefore: 2, nodesAfter: 1, refusals: [{ op: 'add', groupOp: 'mul', reason: 'shape', detail: 'add gives f32<[B]>, the group | computes [B, 3]' }] },
          kernels: [{ index: 0, op: 'fused_elementwise', subOps: ['add', 'mul'], lines: [{ file: 'dir/a<b>&"c\'.dl', line: 3 }], flops: 12, bytes: 48 }],
          flops: 12,
          bytes: 48,
        },
        { name: 'evaluate', dispatches: 0, once: 0, kernels: [], flops: 0, bytes: 0 },
      ],
      memory: { params: 8, state: 0, inputs: 8, plannedTemps: 24, unplannedTemps: 48, planned: 40, unplanned: 64, largestBuffer: 24, largestWhat: 'a tensor <of> predict', graphs: [] },
    };
    const html = renderHtml(report);
    expect(tagProblems(html)).toEqual([]);
    expect(html).not.toContain('<script>');
    expect(html).toContain('M&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('a&lt;b&gt;&amp;&quot;c&#39;.dl');
    const md = renderMarkdown(report);
    expect(md).toContain('the group \\| computes');
    expect(md).toContain('L=1 (default; set with --report-size)');
  });

  it('lists identical fusion refusals once, with how many times they came', () => {
    const adam = { op: 'add', line: { file: 'm.dl', line: 21 }, groupOp: 'sub', groupLine: { file: 'm.dl', line: 21 }, reason: 'bindings' as const, detail: 'the fused kernel would bind 7 inputs and 3 outputs' };
    const other = { op: 'mul', groupOp: 'exp', reason: 'shape' as const, detail: 'another reason' };
    const report: KernelReport = {
      model: 'M',
      file: 'm.dl',
      batch: { value: 2, from: 'given' },
      sizes: { B: 2 },
      defaulted: [],
      graphs: [
        {
          name: 'train',
          dispatches: 1,
          once: 0,
          fusion: { groups: 1, fusedNodes: 2, nodesBefore: 2, nodesAfter: 1, refusals: [adam, adam, other, adam] },
          kernels: [{ index: 0, op: 'fused_elementwise', subOps: ['add', 'mul'], lines: [], flops: 12, bytes: 48 }],
          flops: 12,
          bytes: 48,
        },
      ],
      memory: { params: 8, state: 0, inputs: 8, plannedTemps: 24, unplannedTemps: 48, planned: 40, unplanned: 64, largestBuffer: 24, largestWhat: 'a tensor', graphs: [] },
    };
    const md = renderMarkdown(report);
    const rows = md.split('\n').filter((l) => /^\| (add|mul) \|/.test(l));
    expect(rows).toEqual([expect.stringMatching(/^\| add \| m\.dl:21 \| sub \(m\.dl:21\) \| bindings \| .* \| 3 \|$/), expect.stringMatching(/^\| mul \| .* \| shape \| another reason \| 1 \|$/)]);
    // the summary still counts every refusal
    expect(md).toContain('3 bindings, 1 shape');
    expect(renderHtml(report).match(/<td[^>]*>bindings<\/td>/g)).toHaveLength(1);
  });

  it("a scan step's kernel is charged the time step it reads, not the whole buffer it binds: bytes grow with the steps, not their square", () => {
    const text = `use std.nn.{LSTM}
model Seq(steps: int = 4) {
  input x: f32[B, 4 * steps]
  layer rnn = LSTM(4, 8)
  output h = rnn(reshape(x, [B, steps, 4]))[:, -1]
}
`;
    const at = (steps: number) => {
      const r = compileSource(text, 'seq.dl', undefined, { modelArgs: new Map([['Seq', argsOf('Seq', `steps: ${steps}`)]]), keepGraphs: true });
      expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
      return buildKernelReport({ program: r.programs[0], fusion: fusionOf(r.graphs![0]), batch: 4 }).graphs[0];
    };
    const short = at(8);
    const long = at(32);
    // one fused kernel per step, each reading its step's slice of the precomputed x @ w_x
    const step = (g: typeof short) => g.kernels.filter((k) => k.op === 'fused_matmul_columns')[1].bytes;
    expect(step(long)).toBe(step(short));
    expect(step(short)).toBeLessThan(4096); // the whole x @ w_x at 32 steps is 16 KiB
    expect(long.flops / short.flops).toBeGreaterThan(3.5);
    expect(long.bytes / short.bytes).toBeLessThan(1.25 * (long.flops / short.flops));
  });

  it('the report model without fusion data still lists kernels from the program', () => {
    const text = readFileSync(join(ROOT, FILE), 'utf8');
    const r = compileSource(text, FILE, undefined, { modelArgs: new Map([['MnistMlp', argsOf('MnistMlp', `hidden: ${HIDDEN}`)]]), keepGraphs: true });
    const program = r.programs[0];
    const bare = buildKernelReport({ program, batch: 2 });
    expect(bare.graphs.map((g) => g.dispatches)).toEqual([program.graphs.predict, program.graphs.evaluate, ...program.graphs.steps].map((g) => g.kernels.length));
    const mm = bare.graphs[2].kernels.find((k) => k.op.endsWith('matmul'))!;
    if (mm.op === 'matmul') expect(mm.flops).toBe(2 * 2 * 784 * HIDDEN);
    else expect(mm.flops).toBeGreaterThanOrEqual(2 * 2 * 784 * HIDDEN);
    const full = buildKernelReport({ program, fusion: fusionOf(r.graphs![0]), batch: 2 });
    // with the fusion data every fused kernel names its sub-ops
    for (const k of full.graphs.flatMap((g) => g.kernels)) if (k.op === 'fused_elementwise') expect(k.subOps?.length).toBeGreaterThan(0);
  });

  it('the optimizer, clipping and schedule kernels point at the train block lines they implement, not at a forward line', () => {
    const path = 'examples/char_transformer.dl';
    const text = readFileSync(join(ROOT, path), 'utf8');
    const r = compileSource(text, path, undefined, { modelArgs: new Map([['CharGPT', argsOf('CharGPT', 'vocab: 11, ctx: 8, d: 8, heads: 2, depth: 1')]]) });
    const lineOf = (needle: string) => text.split('\n').findIndex((l) => l.trimStart().startsWith(needle)) + 1;
    const step = r.programs[0].graphs.steps[0];
    const linesOf = (op: string) => new Set(step.kernels.filter((k) => k.op === op && k.source?.file === path).map((k) => k.source!.line));
    expect(linesOf('fused_foreach')).toEqual(new Set([lineOf('optimizer = adamw(')]));
    expect(linesOf('sum_squares')).toEqual(new Set([lineOf('clip_grad_norm =')]));
    expect(step.kernels.filter((k) => k.op === 'fused_foreach' || k.op === 'sum_squares').every((k) => k.source?.file === path)).toBe(true);
  });

  it("CharGPT's causal mask kernels are reported as running once per size", () => {
    const path = 'examples/char_transformer.dl';
    const r = compileSource(readFileSync(join(ROOT, path), 'utf8'), path, undefined, { modelArgs: new Map([['CharGPT', argsOf('CharGPT', 'vocab: 11, ctx: 8, d: 8, heads: 2, depth: 2')]]) });
    const report = buildKernelReport({ program: r.programs[0], batch: 2, sizes: new Map([['L', 6]]) });
    const predict = report.graphs[0];
    expect(predict.once).toBe(2);
    expect(predict.kernels.filter((k) => k.once).map((k) => k.op)).toEqual(['iota', 'ge']);
    const md = renderMarkdown(report);
    expect(md).toContain(`| predict | ? | ${predict.dispatches} (2 once per size) |`);
    expect(md).toContain('ge (once per size)');
  });

  it('matmuls reading a transposed operand (weight and input gradients) count their own k: the step has the unfused matmul FLOPs', () => {
    const text = readFileSync(join(ROOT, FILE), 'utf8');
    const modelArgs = new Map([['MnistMlp', argsOf('MnistMlp', `hidden: ${HIDDEN}`)]]);
    const matmulFlops = (fuse: boolean) => {
      const r = compileSource(text, FILE, undefined, { modelArgs, keepGraphs: true, fuse });
      const report = buildKernelReport({ program: r.programs[0], ...(fuse ? { fusion: fusionOf(r.graphs![0]) } : {}), batch: 3 });
      const step = report.graphs[2];
      return step.kernels.reduce((a, k) => a + (k.parts ?? [{ op: k.op, flops: k.flops }]).filter((x) => x.op === 'matmul').reduce((b, x) => b + x.flops, 0), 0);
    };
    const unfused = matmulFlops(false);
    expect(unfused).toBeGreaterThan(0);
    expect(matmulFlops(true)).toBe(unfused);
  });

  it("an LSTM's cells computing their gates' column blocks count the matmul FLOPs of all four blocks, as the unfused h @ W_h", () => {
    const path = 'examples/lstm_classifier.dl';
    const text = readFileSync(join(ROOT, path), 'utf8');
    const modelArgs = new Map([['ActivityClassifier', argsOf('ActivityClassifier', 'steps: 4, features: 3, hidden: 5, layers: 2, classes: 3')]]);
    const r = compileSource(text, path, undefined, { modelArgs, keepGraphs: true });
    const predict = buildKernelReport({ program: r.programs[0], fusion: fusionOf(r.graphs![0]), batch: 3 }).graphs[0];
    const cells = predict.kernels.filter((k) => k.op === 'fused_matmul_columns' && k.parts);
    expect(cells.length).toBeGreaterThan(4);
    // h [3, 5] @ W_h [5, 20]: 2 * 3 * 20 * 5, computed as four blocks of 5 columns
    for (const k of cells) expect(k.parts!.find((x) => x.op === 'matmul')?.flops).toBe(2 * 3 * 20 * 5);
    const md = renderMarkdown(buildKernelReport({ program: r.programs[0], fusion: fusionOf(r.graphs![0]), batch: 3 }));
    expect(md).toContain('fused_matmul_columns: matmul (600 FLOPs)');
  });

  it('a broken model writes nothing and exits 1; bad flags exit 1', async () => {
    const dir = repoTempDir('report');
    const src = join(dir, 'broken.dl');
    writeFileSync(src, 'model Broken {\n  input x: f32[B, 3]\n  output y = x +\n}\n');
    const out = join(dir, 'out');
    const r = await dlc('compile', src, '-o', out, '--report');
    expect(r.status).toBe(1);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir)).toEqual(['broken.dl']);
    const bad = await dlc('compile', FILE, '-o', out, '--report', 'pdf');
    expect(bad.status).toBe(1);
    expect(bad.err).toContain('--report takes md or html');
    const badBatch = await dlc('compile', FILE, '-o', out, '--report', '--report-batch', '0');
    expect(badBatch.status).toBe(1);
    expect(existsSync(out)).toBe(false);
  });
});

describe('the report\'s default sizes and the model\'s own conditions', () => {
  const program = (conditions: string) =>
    compileSource(`model P {\n  input x: f32[B, H, W]\n  where ${conditions}\n  output y = reshape(x, [B, H / 2, 2, W])\n}\n`, 'p.dl').programs[0]!;

  it('raises a defaulted size to the smallest that fits (H=4 for H % 4 == 0), and says so in the header', () => {
    const fitted = buildKernelReport({ program: program('H % 4 == 0, W % 3 == 0') });
    expect(fitted.sizes).toEqual({ B: 1, H: 4, W: 3 });
    expect(fitted.raised).toEqual(['H', 'W']);
    expect(fitted.broken).toBeUndefined();
    expect(renderMarkdown(fitted)).toContain("H=4 (default, raised from 1 to fit the model's conditions; set with --report-size)");
    // a size given is kept, and one it breaks is a warning in the report
    const given = buildKernelReport({ program: program('H % 4 == 0'), sizes: new Map([['H', 6]]) });
    expect(given.sizes.H).toBe(6);
    expect(given.broken).toBe('`H % 4 == 0` (2 == 0 is false)');
    expect(renderMarkdown(given)).toContain("Warning: these sizes break the model's condition `H % 4 == 0` (2 == 0 is false)");
  });
});

describe("the report's batch size", () => {
  const model = 'model M {\n  input features: f32[B, 4]\n  input label: i32[B]\n  layer fc = Dense(4, 3)\n  loss = cross_entropy(fc(features), label)\n}\n';
  const report = (train: string) => buildKernelReport({ program: compileSource(model + train, 'm.dl').programs[0]! });

  it("is the train block's default batch (32, as dlc train uses) when the block gives none, not B=1 'no train block'", () => {
    const r = report('train M {\n  data = iris()\n  optimizer = adam()\n  minimize loss\n}\n');
    expect(r.sizes.B).toBe(32);
    expect(renderMarkdown(r)).toContain("B=32 (the train block's default batch, 32)");
    expect(renderMarkdown(r)).not.toContain('no train block');
  });

  it("is the train block's batch when it gives one, and 1 without a train block", () => {
    expect(report('train M {\n  data = iris()\n  batch = 8\n  minimize loss\n}\n').sizes.B).toBe(8);
    const none = report('');
    expect(none.sizes.B).toBe(1);
    expect(renderMarkdown(none)).toContain('B=1 (default: no train block)');
  });
});
