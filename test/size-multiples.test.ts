// Sizes a model declares multiples (`where H % 2 == 0`): 2*(H / 2) is H, patches reshape back, the condition is still checked.
import { describe, expect, it } from 'vitest';
import { checkSource } from '../compiler/frontend/check.ts';
import { compileSource } from '../compiler/frontend/compile.ts';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor } from '../compiler/interpret/tensor.ts';
import { sizeExpr } from '../compiler/codegen/size-expr.ts';
import * as D from '../compiler/shapes/dim.ts';
import { Model } from '../runtime/model.ts';
import { getDevice } from './gpu-helpers.ts';

const UNET = `use std.nn.{Conv2d, ConvTranspose2d}

model Unet {
  input image: f32[B, 1, H, W]
  where H % 2 == 0, W % 2 == 0
  layer down = Conv2d(1, 3, kernel: 3, padding: 1)
  layer up = ConvTranspose2d(3, 1, kernel: 2, stride: 2)
  let h = max_pool2d(relu(down(image)), kernel: 2)
  output recon = up(h) + image
  loss = mean((recon - image) ** 2)
}
`;

const messages = (src: string) => checkSource(src, 'm.dl').diagnostics.map((d) => `${d.code} ${d.message}${d.help ? ` | ${d.help}` : ''}`);

describe('declared multiples in the size algebra', () => {
  const H = D.symMultipleOf('H', 2);
  it('k*(H / k) is H, H % k is 0, and each prints and evaluates as the size it is', () => {
    expect(D.dimEquals(D.mul(2, D.floorDiv(H, 2)), H)).toBe(true);
    expect(D.dimEquals(D.floorDiv(D.add(H, 1), 2), D.floorDiv(H, 2))).toBe(true);
    expect(D.mod(H, 2)).toBe(0);
    expect([H, D.floorDiv(H, 2), D.mul(3, D.floorDiv(H, 2)), D.floorDiv(H, 4), D.mul(H, H)].map(D.dimToString)).toEqual(['H', 'H / 2', '3*(H / 2)', 'H / 4', 'H**2']);
    expect(D.evaluate(D.mul(3, D.floorDiv(H, 2)), new Map([['H', 8]]))).toBe(12);
    expect(D.substitute(D.add(H, 1), new Map([['H', 6]]))).toBe(7);
    expect([D.sizeName(H), D.sizeName(D.sym('H')), D.sizeName(D.floorDiv(H, 2))]).toEqual(['H', 'H', undefined]);
    // the runtime binds H from an input's shape: the input's size is written as the name
    expect([H, D.floorDiv(H, 2), D.mul(3, D.floorDiv(H, 2))].map(sizeExpr)).toEqual(['H', ['floor', 'H', 2], ['*', 3, ['floor', 'H', 2]]]);
    // a plain H is another size: nothing is assumed of it
    expect(D.dimEquals(D.mul(2, D.floorDiv(D.sym('H'), 2)), D.sym('H'))).toBe(false);
  });
});

describe('where H % k == 0 in a model', () => {
  it('a pooled then upsampled axis adds to the input; without the where, E0301 says which where to add', () => {
    expect(messages(UNET)).toEqual([]);
    expect(messages(UNET.replace('  where H % 2 == 0, W % 2 == 0\n', ''))).toEqual([
      'E0301 add shapes do not broadcast: f32[B, 1, 2*(H / 2), 2*(W / 2)] and f32[B, 1, H, W] | if the input sizes are always such multiples, say so in the model: `where H % 2 == 0, W % 2 == 0` makes 2*(H / 2) equal H (the condition is checked on every batch)',
    ]);
    // a multiple of 2 is not a multiple of 4: two pools then two upsamples still need H % 4
    const twice = UNET.replace('let h = max_pool2d(relu(down(image)), kernel: 2)', 'let h = max_pool2d(max_pool2d(relu(down(image)), kernel: 2), kernel: 2)').replace('stride: 2)', 'stride: 2)\n  layer up2 = ConvTranspose2d(1, 1, kernel: 2, stride: 2)').replace('up(h) + image', 'up2(up(h)) + image');
    expect(messages(twice)[0]).toContain('add shapes do not broadcast: f32[B, 1, 4*(H / 4), 4*(W / 4)]');
    expect(messages(twice.replace('H % 2 == 0, W % 2 == 0', 'H % 4 == 0 and W % 2 == 0, W % 4 == 0'))).toEqual([]);
  });

  it('a size condition that is no comparison (`where H % 4`, an `or`) is E0304: it was carried as nothing and never checked', () => {
    expect(messages('model M {\n  input x: f32[B, H]\n  where H % 4\n  output y = x\n}\n')).toEqual(['E0304 a condition on sizes is a comparison of whole numbers (==, !=, <, <=, >, >=), several joined with `and` or commas; `H % 4` is not one | say what the remainder must be: `where H % 4 == 0`']);
    expect(messages('model M {\n  input x: f32[B, H]\n  where H == 1 or H % 2 == 0\n  output y = x\n}\n')[0]).toContain('E0304 a condition on sizes is a comparison');
  });

  it('a condition that divides a size by 0 is E0304 when compiling (it failed every batch with NaN == 0)', () => {
    expect(messages('model M(k: int = 0) {\n  input x: f32[B, H]\n  where H % k == 0\n  output y = x\n}\n')).toEqual(['E0304 the condition `H % k == 0` divides a size by 0, so no batch could meet it (k = 0)']);
  });

  it('patches of a hyperparameter size reshape out and back (a ViT patch embedding)', () => {
    const vit = `use std.nn.{Dense}

model Patches(patch: int = 2) {
  input image: f32[B, 3, H, W]
  where H % patch == 0, W % patch == 0
  let p = transpose(reshape(image, [B, 3, H / patch, patch, W / patch, patch]), [0, 2, 4, 1, 3, 5])
  let tokens = reshape(p, [B, (H / patch) * (W / patch), 3 * patch * patch])
  layer embed = Dense(3 * patch * patch, 4)
  output e = embed(tokens)
  output back = reshape(transpose(reshape(tokens, [B, H / patch, W / patch, 3, patch, patch]), [0, 3, 1, 4, 2, 5]), [B, 3, H, W])
}
`;
    const r = checkSource(vit, 'vit.dl');
    expect(r.diagnostics).toEqual([]);
    const g = r.graphs.get('Patches')!;
    expect(D.shapeToString(g.outputs.get('e')!.type.shape)).toBe('[B, (H / 2)*(W / 2), 4]');
    const x = Array.from({ length: 3 * 4 * 6 }, (_, i) => i);
    const params = new Map([['embed.w', tensor('f32', [12, 4], new Array(48).fill(0.5))], ['embed.b', tensor('f32', [4], [0, 0, 0, 0])]]);
    const out = interpretGraph(g, { inputs: new Map([['image', tensor('f32', [1, 3, 4, 6], x)]]), params, state: new Map() }, { sizes: new Map([['B', 1], ['H', 4], ['W', 6]]) });
    expect(Array.from(out.outputs.get('back')!.data)).toEqual(x);
    expect(out.outputs.get('e')!.shape).toEqual([1, 6, 4]);
    expect(messages(vit.replace('  where H % patch == 0, W % patch == 0\n', ''))[0]).toContain('`where H % 2 == 0, W % 2 == 0`');
  });

  it('on WebGPU: trains and predicts as the interpreter does at H = 4, W = 6, and an odd H breaks the condition', { timeout: 90_000 }, async () => {
    const r = compileSource(`${UNET}\ntrain Unet {\n  optimizer = adam(lr: 1e-2)\n  batch = 2\n}\n`, 'unet.dl');
    expect(r.diagnostics).toEqual([]);
    const model = await Model.create(r.programs[0], { device: await getDevice(), seed: 3 });
    try {
      const image = Array.from({ length: 2 * 4 * 6 }, (_, i) => Math.sin(i * 0.7));
      const step = model.trainStep({ image }, { sizes: { H: 4, W: 6 } });
      expect(Number.isFinite((await step.values()).loss)).toBe(true);
      const { recon } = await model.predict({ image }, { sizes: { H: 4, W: 6 } });
      const params = new Map<string, ReturnType<typeof tensor>>();
      const g = checkSource(UNET, 'unet.dl', undefined, { training: false }).graphs.get('Unet')!;
      for (const p of g.params) {
        params.set(p.path, tensor('f32', p.value.type.shape.map((d) => d as number), Array.from(await model.getParameter(p.path))));
      }
      const want = interpretGraph(g, { inputs: new Map([['image', tensor('f32', [2, 1, 4, 6], image)]]), params, state: new Map() }, { sizes: new Map([['B', 2], ['H', 4], ['W', 6]]) });
      expect(Array.from(recon)).toEqual(Array.from(want.outputs.get('recon')!.data).map((v) => expect.closeTo(v, 4)));
      await expect(model.predict({ image: image.slice(0, 2 * 5 * 4) }, { sizes: { H: 5, W: 4 } })).rejects.toThrow("the batch breaks the model's condition `H % 2 == 0` with H = 5 (1 == 0 is false)");
    } finally {
      model.dispose();
    }
  });
});
