#!/usr/bin/env node
// The `dlc` command: runs the TypeScript CLI through tsx, so no build step is needed.

// `dlc graph big.dl | head`: the reader has gone, so there is no one to tell; exit quietly as other tools do
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  });
}

// `dlc --version` answers before tsx and the compiler load (most of a second), as commander would
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  const { readFileSync } = await import('node:fs');
  process.stdout.write(`${JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version}\n`);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  const { main } = await import('../compiler/cli/main.ts');
  process.exitCode = await main(process.argv);
}
