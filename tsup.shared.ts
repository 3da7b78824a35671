import { defineConfig } from 'tsup';

/** The build of a library package: its index as one ESM file (the workspace imports its TypeScript source). */
export function libConfig(entry: string[] = ['src/index.ts']) {
  return defineConfig({ entry, format: ['esm'], target: 'node20', sourcemap: true, clean: true });
}

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
    // A native addon loads its binary at run time: it is never bundled, wherever it is imported.
    external: ['@node-rs/crc32'],
    banner: { js: '#!/usr/bin/env node' },
  });
}
