// Child process for the checkpoint lock race test: at agreed instants, tries to take the lock of each checkpoint in turn (over a stale lock) and prints Y or n for each.
import { lockCheckpoint } from '../compiler/cli/checkpoints.ts';

const [dir, startArg, countArg, spacingArg] = process.argv.slice(2);
const [start, count, spacing] = [Number(startArg), Number(countArg), Number(spacingArg)];
let got = '';
for (let i = 0; i < count; i++) {
  // both processes begin each attempt at the same wall-clock instant
  while (Date.now() < start + i * spacing);
  try {
    lockCheckpoint(`${dir}/ck${i}.safetensors`, () => undefined);
    got += 'Y';
  } catch {
    got += 'n';
  }
}
process.stdout.write(`${got}\n`);
