// Child process for the checkpoint crash test: rewrites one checkpoint atomically in a loop until killed.
import { writeCheckpoint } from '../runtime/node/checkpoint-file.ts';

const [target, startArg] = process.argv.slice(2);
const elements = 1 << 20; // 4 MiB of f32 per write, so a kill often lands mid-write
let generation = Number(startArg);
for (;;) {
  generation++;
  const data = new Float32Array(elements).fill(generation);
  await writeCheckpoint(target, { weights: { dtype: 'f32', shape: [elements], data } }, { generation: String(generation) });
  process.stdout.write(`${generation}\n`);
}
