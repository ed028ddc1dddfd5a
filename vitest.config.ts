// Test runner configuration: every suite under test/, run in forked workers.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
    // the CLI's compile cache (compiler/cli/compile-cache.ts) stays inside the repository
    env: { DLC_CACHE_DIR: 'test/.tmp/compile-cache' },
  },
});
