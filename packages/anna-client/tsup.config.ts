import { defineConfig } from 'tsup';

// Two builds: the library (with .d.ts) and the `anna-local` CLI (with a shebang). Neither
// cleans dist/, since both write there in parallel.
export default defineConfig([
  {
    entry: ['src/index.ts'],
    format: ['esm'],
    target: 'node20',
    sourcemap: true,
    clean: false,
    external: ['zeromq'],
  },
  {
    entry: ['src/server-cli.ts'],
    format: ['esm'],
    target: 'node20',
    sourcemap: true,
    clean: false,
    external: ['zeromq'],
    banner: { js: '#!/usr/bin/env node' },
  },
]);
