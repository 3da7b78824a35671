import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/main.ts', 'src/bench-e2e.ts'],
  format: ['esm'],
  target: 'node20',
  sourcemap: true,
  clean: true,
  // Workspace packages are TypeScript sources: bundle them; keep npm dependencies (zeromq is native) external.
  noExternal: [/^@paxos\//],
  banner: { js: '#!/usr/bin/env node' },
});
