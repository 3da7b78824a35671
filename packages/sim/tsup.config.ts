import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/cli.ts'],
  format: ['esm'],
  target: 'node20',
  sourcemap: true,
  clean: true,
  // Workspace packages are TypeScript sources: bundle them so dist/ runs on plain Node.
  noExternal: [/^@paxos\//],
});
