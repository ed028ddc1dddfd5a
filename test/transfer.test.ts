// Transfer learning from the command line: init_from read before a run moves files aside, what it leaves out said plainly, its errors named, and --resume across changed training setups.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dlc, repoTempDir } from './cli-helpers.ts';
import { IRIS_MODEL, zerosFile } from './helpers.ts';
import { EXIT_OK, EXIT_USER_ERROR } from '../compiler/cli/main.ts';
import { checkSource } from '../compiler/frontend/check.ts';
import { prefixRenames, renamesThatSet } from '../compiler/cli/init-from.ts';
import { compileSource } from '../compiler/frontend/compile.ts';
import { compileTraining } from '../compiler/frontend/train.ts';
import { frozenLayers } from '../compiler/train/frozen-layers.ts';
import { Model } from '../runtime/model.ts';
import { decodeSafetensors, encodeSafetensors } from '../runtime/safetensors.ts';
import { getDevice } from './gpu-helpers.ts';

const MODEL = IRIS_MODEL;

const block = (extra: string, epochs = 1) => `train Iris {\n  data = iris()\n  seed = 3\n  optimizer = adam(lr: 0.03)\n  batch = 16\n  epochs = ${epochs}\n${extra}}\n`;

/** `dlc train file --no-progress ...flags`, expected to succeed. */
async function train(file: string, ...flags: string[]): Promise<string> {
  const r = await dlc('train', file, '--no-progress', ...flags);
  expect(r.status, r.err).toBe(EXIT_OK);
  return r.err;
}

describe('init_from', () => {
  it('a second stage whose init_from is its own checkpoint reads it before moving it aside, and a rerun never replaces the first stage', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('transfer-own');
    const stage1 = join(dir, 'stage1.dl');
    const stage2 = join(dir, 'stage2.dl');
    writeFileSync(stage1, MODEL + block('', 2));
    writeFileSync(stage2, MODEL + block('  init_from = "checkpoints/Iris.safetensors"\n  freeze fc1\n'));
    await train(stage1);
    const ck = join(dir, 'checkpoints', 'Iris.safetensors');
    const previous = join(dir, 'checkpoints', 'Iris.previous.safetensors');
    const first = readFileSync(ck);
    const err = await train(stage2);
    expect(err).toContain(`initialized 4 of 4 parameters from ${ck}`);
    expect(err).toContain(`note: init_from: ${ck} is also where this run saves its checkpoint`);
    expect(readFileSync(previous).equals(first)).toBe(true);
    // again: the checkpoint is now stage 2's, trained from the file that is now .previous; starting over would lose stage 1
    const again = await dlc('train', stage2, '--no-progress');
    expect(again.status).toBe(EXIT_USER_ERROR);
    expect(again.err).toContain(`error: init_from: ${ck} is this run's own checkpoint, and it holds weights an earlier run of this train block trained from it (the weights it started from are kept as ${previous})`);
    expect(readFileSync(previous).equals(first)).toBe(true);
    // init_from naming the .previous file a start-over would replace
    writeFileSync(stage2, MODEL + block('  init_from = "checkpoints/Iris.previous.safetensors"\n'));
    const replaced = await dlc('train', stage2, '--no-progress');
    expect(replaced.status).toBe(EXIT_USER_ERROR);
    expect(replaced.err).toContain(`error: init_from: ${previous} would be replaced as this run starts over`);
    expect(readFileSync(previous).equals(first)).toBe(true);
  });

  it('refuses frozen parameters it would leave at their initial values (E0207), with the rename that would set them; lists the file tensors that matched nothing', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('transfer-frozen');
    const pre = join(dir, 'pre.dl');
    writeFileSync(pre, MODEL + block('  checkpoint { path = "pre.safetensors" }\n'));
    await train(pre);
    const path = join(dir, 'pre.safetensors');
    const renamed = join(dir, 'renamed.dl');
    writeFileSync(renamed, MODEL.replaceAll('fc1', 'body1') + block('  init_from = "pre.safetensors"\n  freeze body1\n  checkpoint { path = "renamed.safetensors" }\n'));
    const refused = await dlc('train', renamed, '--no-progress');
    expect(refused.status).toBe(EXIT_USER_ERROR);
    expect(refused.err).toContain(`error[E0207]: init_from: 2 frozen parameters of Iris are not set by ${path} and would keep their random initial value for the whole run: \`body1.w\` [4, 16], \`body1.b\` [16]; its \`fc1.*\` would match Iris's \`body1.*\` (2 tensors): add "fc1.* -> body1.*" to init_from's rename`);
    expect(existsSync(join(dir, 'renamed.safetensors'))).toBe(false);
    // the same layer trained: it loads the rest, and says what matched nothing
    writeFileSync(renamed, MODEL.replaceAll('fc1', 'body1') + block('  init_from = "pre.safetensors"\n  checkpoint { path = "renamed.safetensors" }\n'));
    expect(await train(renamed)).toContain(`note: init_from: 2 tensors of ${path} (a checkpoint of Iris) match nothing in Iris: \`fc1.b\`, \`fc1.w\`; its \`fc1.*\` would match Iris's \`body1.*\` (2 tensors)`);
    // with the rename the hint gives: the frozen layer is set
    writeFileSync(renamed, MODEL.replaceAll('fc1', 'body1') + block('  init_from { path = "pre.safetensors"; rename = ["fc1.* -> body1.*"] }\n  freeze body1\n  checkpoint { path = "renamed.safetensors" }\n'));
    const err = await train(renamed);
    expect(err).toContain(`initialized 4 of 4 parameters from ${path}`);
    expect(err).not.toContain('warning');
    const before = decodeSafetensors(readFileSync(path)).tensors.get('fc1.w')!.data;
    expect(Array.from(decodeSafetensors(readFileSync(join(dir, 'renamed.safetensors'))).tensors.get('body1.w')!.data)).toEqual(Array.from(before));
    // everything frozen loaded: no warning
    const fine = join(dir, 'fine.dl');
    writeFileSync(fine, MODEL + block('  init_from = "pre.safetensors"\n  freeze fc1\n  checkpoint { path = "fine.safetensors" }\n'));
    expect(await train(fine)).not.toContain('warning');
  });

  it('a file that sets no parameter is E0207 naming what it has and what the model expects, whatever state tensors matched; a transposed frozen weight names the transpose', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('transfer-nothing');
    const f32 = (shape: number[]) => ({ dtype: 'f32' as const, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5) });
    writeFileSync(join(dir, 'torch.safetensors'), encodeSafetensors({ 'fc1.weight': f32([16, 4]), 'fc1.bias': f32([16]), 'fc2.weight': f32([3, 16]), 'fc2.bias': f32([3]) }));
    const file = join(dir, 'iris.dl');
    writeFileSync(file, MODEL + block('  init_from = "torch.safetensors"\n  checkpoint { path = "ck.safetensors" }\n'));
    const none = await dlc('train', file, '--no-progress');
    expect(none.status).toBe(EXIT_USER_ERROR);
    expect(none.err).toContain(`error[E0207]: init_from: no parameter of Iris is in ${join(dir, 'torch.safetensors')}: it has \`fc1.bias\` [16], \`fc1.weight\` [16, 4], \`fc2.bias\` [3], \`fc2.weight\` [3, 16]; Iris expects \`fc1.w\` [4, 16], \`fc1.b\` [16], \`fc2.w\` [16, 3], \`fc2.b\` [3]`);
    expect(none.err).toContain('init_from = "torch.safetensors"');
    expect(existsSync(join(dir, 'ck.safetensors'))).toBe(false);
    // dlc's names in torch's layout, fc1 frozen: the error names the transpose
    writeFileSync(join(dir, 'torch.safetensors'), encodeSafetensors({ 'fc1.w': f32([16, 4]), 'fc1.b': f32([16]), 'fc2.w': f32([16, 3]), 'fc2.b': f32([3]) }));
    writeFileSync(file, MODEL + block('  init_from = "torch.safetensors"\n  freeze fc1\n  checkpoint { path = "ck.safetensors" }\n'));
    const flipped = await dlc('train', file, '--no-progress');
    expect(flipped.status).toBe(EXIT_USER_ERROR);
    expect(flipped.err).toContain("`fc1.w` is f32[16, 4] in");
    expect(flipped.err).toContain("it is the transpose of the model's: transposed? (PyTorch's Linear stores [out, in], dlc's Dense [in, out]); add `fc1.w` to init_from's transpose");
    // trained, not frozen: a warning, and the rest loads
    writeFileSync(file, MODEL + block('  init_from = "torch.safetensors"\n  checkpoint { path = "ck.safetensors" }\n'));
    expect(await train(file)).toContain("warning: init_from: `fc1.w` is f32[16, 4]");
    // with transpose: set, as the transpose
    writeFileSync(file, MODEL + block('  init_from { path = "torch.safetensors"; transpose = ["fc1.w"] }\n  freeze fc1\n  checkpoint { path = "ck.safetensors" }\n'));
    expect(await train(file)).toContain('initialized 4 of 4 parameters');
  });

  it('warns when a layer\'s running statistics load but its parameters do not', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('transfer-half');
    const model = MODEL.replace('use std.nn.{Dense}', 'use std.nn.{Dense, BatchNorm}').replace('layer fc2 = Dense(16, 3)', 'layer bn = BatchNorm(16)\n  layer fc2 = Dense(16, 3)').replace('fc2(relu(fc1(features)))', 'fc2(relu(bn(fc1(features))))');
    const f32 = (shape: number[]) => ({ dtype: 'f32' as const, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5) });
    writeFileSync(join(dir, 'w.safetensors'), encodeSafetensors({ 'fc1.w': f32([4, 16]), 'fc1.b': f32([16]), 'bn.weight': f32([16]), 'bn.bias': f32([16]), 'bn.running_mean': f32([16]), 'bn.running_var': f32([16]) }));
    const file = join(dir, 'iris.dl');
    writeFileSync(file, model + block('  init_from = "w.safetensors"\n  checkpoint { path = "ck.safetensors" }\n'));
    expect(await train(file)).toContain("warning: init_from: `bn.running_mean`, `bn.running_var` came from");
  });

  it('names the setting and the file when the file cannot be read, and is E0206 when it is not a path', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('transfer-unreadable');
    mkdirSync(join(dir, 'folder'));
    writeFileSync(join(dir, 'junk.safetensors'), 'this is not a safetensors file at all');
    for (const [target, why] of [
      ['folder', 'it is a folder, not a weights file'],
      ['junk.safetensors', 'not a valid safetensors file: the header length'],
    ]) {
      const file = join(dir, `${target}.dl`);
      writeFileSync(file, MODEL + block(`  init_from = "${target}"\n  checkpoint { path = "out.safetensors" }\n`));
      const r = await dlc('train', file, '--no-progress');
      expect(r.status).toBe(EXIT_USER_ERROR);
      expect(r.err).toContain(`error: init_from: ${join(dir, target)}: ${why}`);
    }
    for (const value of ['3', '["a.safetensors"]', '""']) {
      const checked = checkSource(MODEL + block(`  init_from = ${value}\n`), 'iv.dl');
      const d = checked.diagnostics.find((x) => x.code === 'E0206');
      expect(d?.message, value).toMatch(/^`init_from` is (a path string|empty)/);
    }
    // the block form: a path, rename rules and transposes, each checked
    for (const [body, message] of [
      ['rename = ["a -> b"]', 'an init_from block needs `path = "<file>.safetensors"`'],
      ['path = "w.safetensors"; rename = ["fc.weight"]', '"fc.weight" is not a rename: a rename is "FILE -> MODEL"'],
      ['path = "w.safetensors"; rename = ["module.* -> fc"]', 'a `*` on one side needs one on the other'],
      ['path = "w.safetensors"; transpose = "fc1.w"', "init_from's `transpose` is a list of strings"],
      ['path = "w.safetensors"; strip = "module."', 'init_from takes `path`, `rename` and `transpose`, not `strip`'],
    ]) {
      const checked = checkSource(MODEL + block(`  init_from { ${body} }\n`), 'iv.dl');
      expect(checked.diagnostics.filter((x) => x.code === 'E0206').map((x) => x.message), body).toContainEqual(expect.stringContaining(message));
    }
    expect(checkSource(MODEL + block('  init_from { path = "w.safetensors"; rename = ["module.* -> *", "fc.weight -> fc.w"]; transpose = ["*.w"] }\n'), 'ok.dl').diagnostics).toEqual([]);
  });

  it("loads another writer's file: F16, BF16 and F64 weights as f32, and tensors the model does not use skipped whatever their dtype (PyTorch's I64 num_batches_tracked)", { timeout: 120_000 }, async () => {
    const dir = repoTempDir('transfer-torch');
    const tensors: [string, string, number[], number][] = [
      ['fc1.w', 'F16', [4, 16], 2],
      ['fc1.b', 'BF16', [16], 2],
      ['fc2.w', 'F64', [16, 3], 8],
      ['fc2.b', 'F32', [3], 4],
      ['fc1.num_batches_tracked', 'I64', [], 8],
      ['fc1.scale', 'F8_E4M3', [2], 1],
    ];
    writeFileSync(join(dir, 'torch.safetensors'), zerosFile(tensors));
    const file = join(dir, 'iris.dl');
    writeFileSync(file, MODEL + block('  init_from = "torch.safetensors"\n  freeze fc1\n  checkpoint { path = "ck.safetensors" }\n'));
    const err = await train(file);
    const path = join(dir, 'torch.safetensors');
    expect(err).toContain(`initialized 4 of 4 parameters from ${path}`);
    // PyTorch's num_batches_tracked is skipped without a note
    expect(err).toContain(`note: init_from: 1 tensor of ${path} matches nothing in Iris: \`fc1.scale\``);
    expect(err).not.toContain('warning');
  });

  it('warns when this run splits the data the init_from run trained on another way (its test examples may have been trained on)', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('transfer-leak');
    const pre = join(dir, 'pre.dl');
    writeFileSync(pre, MODEL + block('  checkpoint { path = "pre.safetensors" }\n'));
    await train(pre, '--limit', '100');
    const fine = join(dir, 'fine.dl');
    writeFileSync(fine, MODEL + block('  init_from = "pre.safetensors"\n  checkpoint { path = "fine.safetensors" }\n'));
    expect(await train(fine, '--limit', '100')).not.toContain('warning');
    const other = await train(fine, '--limit', '140', '--seed', '4');
    expect(other).toContain(`warning: init_from: ${join(dir, 'pre.safetensors')} was trained on this data split another way (seed 3, not 4; --limit 100, not --limit 140)`);
  });

  it('proposes the prefix rename that matches most tensors', () => {
    const file = ['trunk.conv1.w', 'trunk.conv1.b', 'trunk.bn1.gamma', 'trunk.conv2.w', 'old_head.w'];
    const model = ['body.conv1.w', 'body.conv1.b', 'body.bn1.gamma', 'body.conv2.w', 'head.w', 'head.b'];
    expect(prefixRenames(file, model)).toEqual([{ from: 'trunk', to: 'body', count: 4 }]);
  });

  it("proposes a wrapper's prefix (DataParallel's `module.`) and never a rename whose shapes do not fit", () => {
    const file = ['module.body.w', 'module.body.b', 'module.head.w', 'module.head.b', 'module.bn.gamma'];
    const model = ['body.w', 'body.b', 'head.w', 'head.b', 'bn.gamma'];
    const shapes = {
      file: new Map<string, number[]>([['module.body.w', [4, 8]], ['module.body.b', [8]], ['module.head.w', [8, 2]], ['module.head.b', [2]], ['module.bn.gamma', [8]]]),
      model: new Map<string, number[]>([['body.w', [4, 8]], ['body.b', [8]], ['head.w', [8, 2]], ['head.b', [2]], ['bn.gamma', [8]]]),
    };
    expect(prefixRenames(file, model, shapes)).toEqual([{ from: 'module', to: '', count: 5 }]);
    // names that agree with shapes that do not: not proposed
    const unfit = { file: new Map([['trunk.a.w', [4, 8]], ['trunk.b.w', [8, 2]]]), model: new Map([['body.a.w', [3, 3]], ['body.b.w', [3, 3]]]) };
    expect(prefixRenames(['trunk.a.w', 'trunk.b.w'], ['body.a.w', 'body.b.w'])).toEqual([{ from: 'trunk', to: 'body', count: 2 }]);
    expect(prefixRenames(['trunk.a.w', 'trunk.b.w'], ['body.a.w', 'body.b.w'], unfit)).toEqual([]);
    // the model's names under a prefix the file lacks
    expect(prefixRenames(['fc.w', 'fc.b'], ['net.fc.w', 'net.fc.b'])).toEqual([{ from: '', to: 'net', count: 2 }]);
  });

  it("an error's rename hint counts only the tensors the error is about, and only a rule that would set them as init_from reads it", () => {
    // a PyTorch file under DataParallel's `module.`: `head` is frozen, and the rules given set `body` only
    const file = new Map<string, number[]>([
      ['module.body.weight', [8, 4]], ['module.body.bias', [8]], ['module.bn.weight', [8]], ['module.bn.bias', [8]], ['module.bn.running_mean', [8]], ['module.bn.running_var', [8]],
      ['module.bn.num_batches_tracked', []], ['module.head.weight', [3, 8]], ['module.head.bias', [3]],
    ]);
    const model = new Map<string, number[]>([['body.w', [4, 8]], ['body.b', [8]], ['bn.gamma', [8]], ['bn.beta', [8]], ['bn.running_mean', [8]], ['bn.running_var', [8]], ['head.w', [8, 3]], ['head.b', [3]]]);
    const shapes = { file, model };
    const rules = ['module.body.weight -> body.w', 'module.body.bias -> body.b'];
    const unused = [...file.keys()].filter((n) => !n.startsWith('module.body.'));
    const unloaded = [...model.keys()].filter((n) => !n.startsWith('body.'));
    // by every unloaded tensor, `module.* -> *` matches the running statistics: no help for the frozen head
    expect(prefixRenames(unused, unloaded, shapes)).toEqual([{ from: 'module', to: '', count: 2 }]);
    expect(renamesThatSet(['head.w', 'head.b'], unused, ['body.w', 'body.b'], rules, shapes, new Set(['body.w', 'head.w']))).toEqual([]);
    // a rule that sets them is proposed, with the transpose the file's layout needs
    const torchHead = new Map<string, number[]>([['module.head.w', [3, 8]], ['module.head.b', [3]]]);
    expect(renamesThatSet(['head.w', 'head.b'], ['module.head.w', 'module.head.b'], [], [], { file: torchHead, model }, new Set())).toEqual([{ from: 'module', to: '', count: 2, transpose: ['head.w'] }]);
    expect(renamesThatSet(['head.w', 'head.b'], ['module.head.w', 'module.head.b'], [], [], { file: torchHead, model }, new Set(['head.w']))).toEqual([{ from: 'module', to: '', count: 2, transpose: [] }]);
    // not one an earlier rule hides (its model side `*` matches every path first)
    expect(renamesThatSet(['head.w', 'head.b'], ['module.head.w', 'module.head.b'], [], ['module.*.weight -> *'], { file: torchHead, model }, new Set(['head.w']))).toEqual([]);
    // nor one that would take away a tensor that loads now (`fc.w` by its own name)
    const withFc = new Map<string, number[]>([...torchHead, ['fc.w', [2, 2]]]);
    expect(renamesThatSet(['head.w', 'head.b'], ['module.head.w', 'module.head.b'], ['fc.w'], [], { file: withFc, model: new Map([...model, ['fc.w', [2, 2]]]) }, new Set(['head.w']))).toEqual([]);
  });
});

describe('--resume', () => {
  it('says that a finished run has nothing left to train, and how to train more', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('transfer-finished');
    const file = join(dir, 'iris.dl');
    writeFileSync(file, MODEL + block('  checkpoint { path = "ck.safetensors" }\n', 2));
    await train(file);
    const r = await dlc('train', file, '--no-progress', '--resume');
    expect(r.status).toBe(EXIT_USER_ERROR);
    expect(r.err).toContain(`error: --resume: ${join(dir, 'ck.safetensors')} already finished its 2 epochs (the train block's epochs: 2); pass --epochs 3 or more to train more`);
    expect(await train(file, '--resume', '--epochs', '3')).toContain('resumed from');
    expect(existsSync(join(dir, 'ck.safetensors'))).toBe(true);
  });
});

describe('checkpoints that do not fit', () => {
  it('--resume after freeze changed: a warning for parameters without optimizer state, a note for the state of parameters now frozen', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('transfer-refreeze');
    const file = join(dir, 'iris.dl');
    const ck = join(dir, 'ck.safetensors');
    const frozen = MODEL + block('  freeze fc1\n  checkpoint { path = "ck.safetensors" }\n');
    writeFileSync(file, frozen);
    await train(file);
    writeFileSync(file, MODEL + block('  checkpoint { path = "ck.safetensors" }\n'));
    const unfrozen = await train(file, '--resume', '--epochs', '2');
    expect(unfrozen).toContain(`warning: ${ck} has no optimizer state for \`fc1.w\`, \`fc1.b\` (frozen when it was saved?): their state starts at zero while the step count goes on from step 8`);
    writeFileSync(file, frozen);
    const refrozen = await train(file, '--resume', '--epochs', '3');
    expect(refrozen).toContain(`note: ${ck} holds optimizer state for \`fc1.b\`, \`fc1.w\`, which this train block does not train (frozen since it was saved?); that state is dropped`);
    expect(refrozen).not.toContain('--args');
  });

  it('predict and evaluate say what is wrong with the file: a folder, not a safetensors file, another model\'s checkpoint', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('transfer-wrong-file');
    const other = join(dir, 'other.dl');
    writeFileSync(other, MODEL.replaceAll('Iris', 'Other') + block('  checkpoint { path = "other.safetensors" }\n').replace('Iris', 'Other'));
    await train(other);
    const file = join(dir, 'iris.dl');
    writeFileSync(file, MODEL.replace('Dense(16, 3)', 'Dense(16, 3, bias: false)').replace('Dense(4, 16)', 'Dense(4, 16, bias: false)') + block(''));
    writeFileSync(join(dir, 'junk.txt'), 'not weights at all');
    mkdirSync(join(dir, 'folder'));
    for (const [target, message] of [
      ['junk.txt', `${join(dir, 'junk.txt')} is not a checkpoint dlc can read: the header length`],
      ['folder', `cannot read the checkpoint ${join(dir, 'folder')}: it is a folder, not a weights file`],
      ['other.safetensors', `${join(dir, 'other.safetensors')} is a checkpoint of the model Other, not Iris`],
    ]) {
      for (const command of ['predict', 'evaluate']) {
        const r = await dlc(command, file, '--checkpoint', join(dir, target));
        expect(r.status, r.err).toBe(EXIT_USER_ERROR);
        expect(r.err).toContain(message);
        expect(r.err).not.toContain('--args');
      }
    }
  });
});

describe('freeze and the file system', () => {
  it('notes that a frozen batch norm layer still updates its running statistics', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('transfer-bn');
    const file = join(dir, 'bn.dl');
    const model = MODEL.replace('use std.nn.{Dense}', 'use std.nn.{Dense, BatchNorm}').replace('layer fc2', 'layer bn = BatchNorm(16)\n  layer fc2').replace('fc2(relu(fc1(features)))', 'fc2(relu(bn(fc1(features))))');
    writeFileSync(file, model + block('  freeze fc1, bn\n  checkpoint { path = "ck.safetensors" }\n'));
    expect(await train(file)).toContain('note: freeze fixes the parameters of `bn`, but training still updates its running statistics');
    writeFileSync(file, model + block('  freeze fc1\n  checkpoint { path = "ck.safetensors" }\n'));
    expect(await train(file)).not.toContain('running statistics');
    writeFileSync(file, model + block('  freeze fc1, bn\n  freeze_mode = "inference"\n  checkpoint { path = "ck.safetensors" }\n'));
    const inference = await train(file);
    expect(inference).not.toContain('running statistics');
    expect(inference).not.toContain('does not act on');
  });

  it.skipIf(!existsSync('/proc/self'))('a checkpoint under /proc is an error, not a hang', { timeout: 60_000 }, async () => {
    const dir = repoTempDir('transfer-proc');
    const file = join(dir, 'iris.dl');
    writeFileSync(file, MODEL + block(''));
    const r = await dlc('train', file, '--no-progress', '--checkpoint', '/proc/dlc-no-such/x.safetensors');
    expect(r.status).toBe(EXIT_USER_ERROR);
    expect(r.err).toContain('cannot write the checkpoint /proc/dlc-no-such/x.safetensors');
  });
});

describe('freeze diagnostics', () => {
  const TRUNK = `use std.nn.{Dense}
layer Trunk {
  layer conv1 = Dense(4, 8)
  layer conv2 = Dense(8, 8)
  forward(x: f32[B, 4]) -> f32[B, 8] = conv2(conv1(x))
}
model M {
  input x: f32[B, 4]
  input label: i32[B]
  layer trunk = Trunk()
  layer head = Dense(8, 3)
  loss = cross_entropy(head(trunk(x)), label)
}
`;
  const diagnose = (body: string) => checkSource(`${TRUNK}train M {\n  epochs = 1\n${body}}\n`, 'fz.dl').diagnostics;

  it('suggests a layer for a layer path, the model\'s parameter name for a pattern, and points at the freeze that froze everything', () => {
    const ds = diagnose('  freeze trunk.conv3, *.bias\n');
    expect(ds.map((d) => [d.message, d.help])).toEqual([
      ['`trunk.conv3` names no parameter of `M`', 'did you mean `trunk.conv1`?'],
      ['`*.bias` names no parameter of `M`', 'did you mean `*.b`?'],
    ]);
    const text = `${TRUNK}train M {\n  epochs = 1\n  freeze trunk\n  freeze head\n}\n`;
    const all = checkSource(text, 'fz.dl').diagnostics;
    expect(all).toHaveLength(1);
    expect(all[0].message).toBe('`freeze` leaves the step `train` no parameter to update: every parameter it trains is frozen');
    expect(text.slice(all[0].span.start, all[0].span.end)).toBe('freeze head');
  });

  // regression: a path through a tied instance named nothing, with no hint that its parameters are the declaring layer's
  it('a path through a tied layer (passed to another layer, listed again) names the layer its parameters are saved under', () => {
    const tied = `use std.nn.{Dense, Residual, Sequential}
model T {
  input x: f32[B, 4]
  input y: f32[B, 4]
  layer shared = Dense(4, 4)
  layer other = Dense(4, 4)
  layer seq = Sequential([shared, tanh, shared])
  layer res = Residual(shared)
  layer pair = [shared, shared]
  let h = res(other(seq(x)))
  for l in pair {
    h = l(h)
  }
  loss = mse(h, y)
}
train T {
  freeze seq, res.f, pair.1, seq.items.2.w
  minimize loss
}
`;
    const ds = checkSource(tied, 'tied.dl').diagnostics;
    expect(ds.map((d) => [d.code, d.message, d.help])).toEqual([
      ['E0206', '`seq` names no parameter of `T`', '`seq` holds only tied layers, whose parameters are named under `shared`: write `shared`'],
      ['E0206', '`res.f` names no parameter of `T`', '`res.f` is the layer `shared` used again (tied weights), whose parameters are named under `shared`: write `shared`'],
      ['E0206', '`pair.1` names no parameter of `T`', '`pair.1` is the layer `shared` used again (tied weights), whose parameters are named under `shared`: write `shared`'],
      ['E0206', '`seq.items.2.w` names no parameter of `T`', '`seq.items.2` is the layer `shared` used again (tied weights), whose parameters are named under `shared`: write `shared.w`'],
    ]);
    expect(checkSource(tied.replace('freeze seq, res.f, pair.1, seq.items.2.w', 'freeze shared'), 'tied.dl').diagnostics).toEqual([]);
  });

  it('warns (W0206) about a param_group whose parameters are all frozen', () => {
    const ds = diagnose('  freeze trunk\n  param_group { params = [trunk.conv1]; lr = 1e-4 }\n');
    expect(ds.map((d) => [d.code, d.severity, d.message])).toEqual([['W0206', 'warning', 'every parameter of this param_group is frozen: its options apply to no update']]);
    expect(diagnose('  freeze trunk.conv2\n  param_group { params = [trunk]; lr = 1e-4 }\n')).toEqual([]);
  });
});

describe('dlc compile output names', () => {
  it('says which .dl file each module came from, notes a module from another file it replaces, and refuses two models with one module name', { timeout: 120_000 }, async () => {
    const dir = repoTempDir('transfer-compile');
    const out = join(dir, 'out');
    const a = join(dir, 'a.dl');
    const b = join(dir, 'b.dl');
    writeFileSync(a, MODEL);
    writeFileSync(b, MODEL.replace('Dense(4, 16)', 'Dense(4, 8)').replace('Dense(16, 3)', 'Dense(8, 3)'));
    const first = await dlc('compile', a, '-o', out);
    expect(first.status, first.err).toBe(EXIT_OK);
    expect(first.err).toContain(`wrote ${join(out, 'iris')}.ts (Iris from ${a}`);
    expect((await dlc('compile', a, '-o', out)).err).not.toContain('note:');
    const second = await dlc('compile', b, '-o', out);
    expect(second.err).toContain(`note: ${join(out, 'iris')}.ts was compiled from ${a}; it is replaced by Iris from ${b}`);
    const both = join(dir, 'both.dl');
    writeFileSync(both, MODEL.replace('model Iris', 'model FooBar') + MODEL.replace(/^use .*$/gm, '').replace('model Iris', 'model Foo_Bar'));
    const clash = await dlc('compile', both, '-o', join(dir, 'out2'));
    expect(clash.status, clash.err).toBe(EXIT_USER_ERROR);
    expect(clash.err).toContain(`error: the models FooBar and Foo_Bar would both be written to ${join(dir, 'out2', 'foo_bar')}.ts`);
    expect(existsSync(join(dir, 'out2', 'foo_bar.ts'))).toBe(false);
  });
});

describe('freeze_mode = "inference"', () => {
  const SOURCE = (settings: string) => `use std.nn.{Dense, BatchNorm}
layer Trunk {
  layer fc = Dense(4, 8)
  layer bn = BatchNorm(8)
  forward(x: f32[B, 4]) -> f32[B, 8] = dropout(relu(bn(fc(x))), p: 0.5)
}
model M {
  input x: f32[B, 4]
  input label: i32[B]
  layer trunk = Trunk()
  layer head = Dense(8, 3)
  loss = cross_entropy(head(trunk(x)), label)
}
train M {
  optimizer = sgd(lr: 0.1)
  batch = 4
${settings}}
`;
  const x = [1, 2, 3, 4, -1, 0.5, 2, 0, 3, -2, 1, 1, 0, 0, -1, 2];
  const label = [0, 1, 2, 1];

  it('runs the frozen trunk as in evaluation: its batch norm keeps (and reads) its running statistics, its dropout keeps everything; the head trains', { timeout: 120_000 }, async () => {
    const device = await getDevice();
    const runningMean = async (m: Model) => Array.from(decodeSafetensors(await m.saveWeights()).tensors.get('trunk.bn.running_mean')!.data as ArrayLike<number>);
    const stepAndEvaluate = async (settings: string) => {
      const r = compileSource(SOURCE(settings), 'fm.dl');
      expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
      const model = await Model.create(r.programs[0], { device, seed: 4 });
      try {
        const before = await runningMean(model);
        const headBefore = Array.from(await model.getParameter('head.w'));
        const evaluated = (await model.evaluate({ x, label })).loss;
        const trained = (await model.trainStep({ x, label }).values()).loss;
        const headAfter = Array.from(await model.getParameter('head.w'));
        return { before, after: await runningMean(model), evaluated, trained, headMoved: headAfter.some((v, i) => v !== headBefore[i]) };
      } finally {
        model.dispose();
      }
    };
    const inference = await stepAndEvaluate('  freeze trunk\n  freeze_mode = "inference"\n');
    expect(inference.after).toEqual(inference.before);
    // the step's loss is the evaluation loss: no batch statistics, no dropout in the trunk
    expect(inference.trained).toBeCloseTo(inference.evaluated, 5);
    expect(inference.headMoved).toBe(true);
    const asTraining = await stepAndEvaluate('  freeze trunk\n');
    expect(asTraining.after).not.toEqual(asTraining.before);
    expect(Math.abs(asTraining.trained - asTraining.evaluated)).toBeGreaterThan(1e-3);
  });

  it('names the frozen layers and those inside them; other values are E0206, and without freeze it is W0206', () => {
    const t = compileTraining(SOURCE('  freeze trunk\n'), 'fm.dl').trainings[0];
    expect([...frozenLayers(t.forward, t.plan.frozen)].sort()).toEqual(['trunk', 'trunk.bn', 'trunk.fc']);
    expect([...frozenLayers(t.forward, ['trunk.bn.gamma', 'trunk.bn.beta'])]).toEqual(['trunk.bn']);
    const ds = (settings: string) => checkSource(SOURCE(settings), 'fm.dl').diagnostics.map((d) => `${d.code} ${d.message}`);
    expect(ds('  freeze trunk\n  freeze_mode = "eval"\n')).toEqual(['E0206 `freeze_mode` is "train" or "inference"']);
    expect(ds('  freeze_mode = "inference"\n')).toEqual(['W0206 `freeze_mode` acts on frozen layers, and this train block freezes none']);
  });
});
