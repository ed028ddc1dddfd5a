// Grouped and depthwise convolutions train: a training step with Conv2d(groups: 2), a depthwise Conv2d
// (groups = channels) and a grouped ConvTranspose2d, compiled and run on WebGPU (Dawn on lavapipe), gives the
// float64 interpreter's updated parameters from the same weights and batch (their gradients are checked against
// finite differences in stdlib-gradcheck.test.ts).
import { describe, expect, it } from 'vitest';
import { compileSource } from '../compiler/frontend/compile.ts';
import { compileTraining } from '../compiler/frontend/train.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import { Model } from '../runtime/model.ts';
import { decodeSafetensors } from '../runtime/safetensors.ts';
import { getDevice } from './gpu-helpers.ts';

const SOURCE = `use std.nn.{Conv2d, ConvTranspose2d}
model Separable {
  input x: f32[B, 4, 6, 6]
  layer grouped = Conv2d(4, 6, 3, padding: 1, groups: 2)
  layer depthwise = Conv2d(6, 6, 3, stride: 2, padding: 1, groups: 6)
  layer pointwise = Conv2d(6, 4, 1)
  layer up = ConvTranspose2d(4, 4, 3, stride: 2, padding: 1, output_padding: 1, groups: 2)
  output y = up(relu(pointwise(depthwise(relu(grouped(x))))))
  loss = mean((y - x) ** 2)
}
train Separable {
  optimizer = sgd(lr: 0.5)
  batch = 2
}
`;

describe('grouped and depthwise convolutions', () => {
  it('a training step on WebGPU updates every parameter as the float64 interpreter does', { timeout: 120_000 }, async () => {
    const compiled = compileSource(SOURCE, 'separable.dl');
    expect(compiled.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const training = compileTraining(SOURCE, 'separable.dl').trainings[0];
    const step = training.steps[0];
    const x = Float32Array.from({ length: 2 * 4 * 6 * 6 }, (_, i) => Math.sin(0.37 * i + 0.1));

    const model = await Model.create(compiled.programs[0], { device: await getDevice(), seed: 7 });
    let before: Map<string, Tensor>;
    let after: Map<string, Float32Array>;
    try {
      const read = async () => decodeSafetensors(await model.saveWeights()).tensors;
      before = new Map([...(await read())].map(([k, t]) => [k, tensor(t.dtype === 'f32' ? 'f32' : t.dtype === 'i32' ? 'i32' : 'u32', [...t.shape], Array.from(t.data as ArrayLike<number>))]));
      await model.trainStep({ x }).values();
      after = new Map([...(await read())].map(([k, t]) => [k, t.data as Float32Array]));
    } finally {
      model.dispose();
    }

    const pick = (paths: readonly string[]) => new Map(paths.map((p) => [p, before.get(p)!]));
    const ref = interpretGraph(step, { inputs: new Map([['x', tensor('f32', [2, 4, 6, 6], Array.from(x))]]), params: pick(step.params.map((p) => p.path)), state: pick(step.state.map((s) => s.path)) }, { sizes: new Map([['B', 2]]) });
    const updated = step.params.filter((p) => p.update);
    expect(updated.map((p) => p.path).sort()).toEqual(['depthwise.b', 'depthwise.w', 'grouped.b', 'grouped.w', 'pointwise.b', 'pointwise.w', 'up.b', 'up.w']);
    for (const p of updated) {
      const want = ref.values.get(p.update!.id)!.data;
      const got = after.get(p.path)!;
      const moved = Math.max(...Array.from(want, (v, i) => Math.abs(v - before.get(p.path)!.data[i])));
      expect(moved, `${p.path} moves`).toBeGreaterThan(1e-4);
      const worst = Math.max(...Array.from(got, (v, i) => Math.abs(v - want[i])));
      expect(worst, `${p.path}: the update differs by ${worst} (it moved by up to ${moved})`).toBeLessThan(1e-5 * Math.max(1, moved * 10));
    }
  });
});
