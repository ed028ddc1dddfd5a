// Vite config of the web example (root: examples/web); `npm run web:gen` must have written generated/ first.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: './',
  clearScreen: false,
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // the compiled program (WGSL of every kernel) makes one large chunk; that is expected
    chunkSizeWarningLimit: 2048,
    // the digits asset is served as a file, never inlined
    assetsInlineLimit: 0,
  },
  server: {
    fs: { allow: [fileURLToPath(new URL('../..', import.meta.url))] },
  },
});
