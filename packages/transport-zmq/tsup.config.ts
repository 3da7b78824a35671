import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm'],
  target: 'node20',
  sourcemap: true,
  clean: true,
  // Native addon: resolved from node_modules at run time, never bundled.
  external: ['zeromq'],
});
