// Proves the machine runs real WebGPU: Dawn (npm `webgpu`) finds an adapter and a compute shader computes.
import { describe, expect, it } from 'vitest';
import { getDevice } from './gpu-helpers.ts';

describe('Dawn through the webgpu package', () => {
  it('finds an adapter and runs a compute shader', async () => {
    // getDevice throws with a clear message when Dawn finds no adapter
    const device = await getDevice();
    const adapterInfo = device.adapterInfo;
    console.log(`adapter: ${adapterInfo.vendor} ${adapterInfo.architecture} ${adapterInfo.description}`);

    const n = 1000;
    const a = Float32Array.from({ length: n }, (_, i) => i * 0.5);
    const b = Float32Array.from({ length: n }, (_, i) => 3 - i);
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
    const upload = (data: Float32Array<ArrayBuffer>) => {
      const buffer = device.createBuffer({ size: data.byteLength, usage });
      device.queue.writeBuffer(buffer, 0, data);
      return buffer;
    };
    const bufA = upload(a);
    const bufB = upload(b);
    const bufOut = device.createBuffer({ size: a.byteLength, usage });
    const readback = device.createBuffer({ size: a.byteLength, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const module = device.createShaderModule({
      code: `
        @group(0) @binding(0) var<storage, read> a: array<f32>;
        @group(0) @binding(1) var<storage, read> b: array<f32>;
        @group(0) @binding(2) var<storage, read_write> out: array<f32>;
        @compute @workgroup_size(64)
        fn main(@builtin(global_invocation_id) id: vec3<u32>) {
          if (id.x < arrayLength(&out)) { out[id.x] = a[id.x] + b[id.x]; }
        }`,
    });
    const info = await module.getCompilationInfo();
    expect(info.messages.filter((m) => m.type === 'error')).toEqual([]);
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const bindGroup = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [bufA, bufB, bufOut].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(Math.ceil(n / 64));
    pass.end();
    encoder.copyBufferToBuffer(bufOut, 0, readback, 0, a.byteLength);
    device.queue.submit([encoder.finish()]);
    await readback.mapAsync(GPUMapMode.READ);
    const result = new Float32Array(readback.getMappedRange().slice(0));
    readback.unmap();
    for (let i = 0; i < n; i++) expect(result[i]).toBe(Math.fround(a[i] + b[i]));
  });
});
