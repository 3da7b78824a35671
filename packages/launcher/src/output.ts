/**
 * What every CLI prints for a person and for a program, without commander (the flagless bench
 * scripts use it too): aligned tables, one JSON document on stdout, the package version.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Rows as aligned text, one line each (the header first): columns two spaces apart, each as
 * wide as its widest cell, null as "-"; the columns `right` names (numbers; by header, or every
 * column but the first) are right-aligned. Trailing spaces are trimmed. The one table helper of
 * every CLI and benchmark: no `console.table`.
 */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly (string | number | null | undefined)[])[],
  options: { right?: readonly string[] | 'all-but-first' } = {},
): string[] {
  const cells = [header, ...rows].map((r) => header.map((_, c) => String(r[c] ?? '-')));
  const widths = header.map((_, c) => Math.max(...cells.map((r) => (r[c] as string).length)));
  const right = header.map((h, c) =>
    options.right === 'all-but-first' ? c > 0 : (options.right?.includes(h) ?? false),
  );
  return cells.map((r) =>
    r
      .map((v, c) => (right[c] ? v.padStart(widths[c] as number) : v.padEnd(widths[c] as number)))
      .join('  ')
      .trimEnd(),
  );
}

/** `label  value` lines of a summary, the labels padded to one width. */
export function formatPairs(pairs: Readonly<Record<string, string | number>>): string[] {
  const width = Math.max(...Object.keys(pairs).map((k) => k.length));
  return Object.entries(pairs).map(([k, v]) => `${k.padEnd(width)}  ${v}`);
}

/** What `outputOptions` adds to a command's flags. */
export interface OutputFlags {
  output: 'text' | 'json';
  json?: boolean;
}

/** Whether the flags ask for JSON output. */
export function wantsJson(flags: Partial<OutputFlags>): boolean {
  return flags.output === 'json' || flags.json === true;
}

/** Prints `value` as the one JSON document of a `-o json` run. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * For a `-o json` run: everything the command would print for a person (console.log, .info,
 * .table) goes to stderr instead, so stdout carries only the JSON document `printJson` writes.
 * Returns whether JSON was asked for.
 */
export function jsonMode(flags: Partial<OutputFlags>): boolean {
  if (!wantsJson(flags)) return false;
  console.log = console.error;
  console.info = console.error;
  console.table = (data: unknown) => console.error(data);
  return true;
}

/**
 * The version in the package.json nearest above `moduleUrl` (a CLI passes `import.meta.url`:
 * its source or its bundle, both inside the package), or "unknown".
 */
export function packageVersion(moduleUrl: string): string {
  let dir = path.dirname(fileURLToPath(moduleUrl));
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const version = (JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown }).version;
        if (typeof version === 'string') return version;
      } catch {}
    }
    const parent = path.dirname(dir);
    if (parent === dir) return 'unknown';
    dir = parent;
  }
}
