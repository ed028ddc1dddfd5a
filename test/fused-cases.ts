// Shared by the tests of the passes after fusion (view-inputs, concat-in-place, merge-elementwise): a graph with its feeds, bit-for-bit checks in the interpreter and on Dawn.
import { expect } from 'vitest';
import { interpretGraph } from '../compiler/interpret/interpret.ts';
import { tensor, type Tensor } from '../compiler/interpret/tensor.ts';
import type { Graph } from '../compiler/ir/types.ts';
import { fuseGraph, type FusionOptions } from '../compiler/optimize/fusion.ts';
import { getDevice, runGraphs } from './gpu-helpers.ts';
import type { GraphBuilder } from './graph-builder.ts';

/** A graph, what to feed it, and the sizes its symbolic dimensions take. */
export interface FusedCase {
  readonly graph: Graph;
  readonly feeds: Map<string, Tensor>;
  readonly sizes: Map<string, number>;
}

/** Random f32 values in [-2, 2) for every input the builder declared, with B taken from `sizes`. */
export function feedsFor(b: GraphBuilder, sizes: ReadonlyMap<string, number>, rand: () => number): Map<string, Tensor> {
  const feeds = new Map<string, Tensor>();
  for (const i of b.inputs) {
    const dims = i.value.type.shape.map((d) => (typeof d === 'number' ? d : sizes.get('B')!));
    const n = dims.reduce((p, q) => p * q, 1);
    feeds.set(i.name, tensor('f32', dims, Array.from({ length: n }, () => Math.fround(rand() * 4 - 2))));
  }
  return feeds;
}

/** Asserts the fused graph gives the case's graph's outputs in the float64 interpreter, bit for bit. */
export function expectSameBits(c: FusedCase, fused: Graph, what: string): void {
  const run = (g: Graph) => interpretGraph(g, { inputs: c.feeds, params: new Map(), state: new Map() }, { sizes: c.sizes }).outputs;
  const [want, got] = [run(c.graph), run(fused)];
  for (const [k, t] of want) expect([...got.get(k)!.data], `${what} output ${k}`).toEqual([...t.data]);
}

/** The outputs whose bits differ on WebGPU between each graph fused fully and fused with `without`, every kernel variant (GPU, CPU) in turn. */
export async function gpuMismatches(cases: readonly FusedCase[], without: FusionOptions, what: string): Promise<string[]> {
  const device = await getDevice();
  const bad: string[] = [];
  for (const variant of ['gpu', 'cpu'] as const) {
    const base = cases.map((c) => ({ graph: fuseGraph(c.graph, without).graph, feeds: c.feeds, sizes: c.sizes }));
    const full = cases.map((c) => ({ graph: fuseGraph(c.graph).graph, feeds: c.feeds, sizes: c.sizes }));
    const [a, b] = [await runGraphs(device, base, { variant }), await runGraphs(device, full, { variant })];
    a.forEach((outs, j) => {
      for (const [k, x] of outs) if (x.length !== b[j].get(k)!.length || x.some((w, i) => w !== b[j].get(k)![i])) bad.push(`${what} ${j} output ${k} (${variant})`);
    });
  }
  return bad;
}
