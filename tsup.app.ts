import { defineConfig } from 'tsup';

/**
 * The build of every app: one ESM bundle per entry with a shebang. Workspace packages are
 * TypeScript sources, so they are bundled; npm dependencies (zeromq is native) stay external.
 */
export function appConfig(entry: string[] = ['src/main.ts']) {
  return defineConfig({
    entry,
    format: ['esm'],
    target: 'node20',
    sourcemap: true,
    clean: true,
    noExternal: [/^@paxos\//],
    banner: { js: '#!/usr/bin/env node' },
  });
}
