#!/usr/bin/env node
// The `dlc` command: runs the TypeScript CLI through tsx, so no build step is needed.
import { register } from 'tsx/esm/api';

// `dlc graph big.dl | head`: the reader has gone, so there is no one to tell; exit quietly as other tools do
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  });
}

register();
const { main } = await import('../compiler/cli/main.ts');
process.exitCode = await main(process.argv);
