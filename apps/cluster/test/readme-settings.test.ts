/**
 * The README's settings tables against the role apps' `--help`: every variable, flag and default
 * the README lists is what the app parses, and every setting an app parses is in the README. The
 * apps are the built ones (`pnpm build` first, as for every test that starts a process).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** README role name → app folder. */
const APPS: Readonly<Record<string, string>> = {
  acceptor: 'acceptor',
  batcher: 'batcher',
  client: 'client',
  matchmaker: 'matchmaker',
  mock: 'mock',
  proposer: 'proposer',
  'proxy leader': 'proxy-leader',
  unbatcher: 'unbatcher',
};

/** One setting as a table row or a help line says it: variable, flag, default (null: required). */
interface Setting {
  readonly variable: string;
  readonly flag: string;
  readonly defaultValue: string | null;
}

const key = (s: Setting) => `${s.variable} ${s.flag} ${s.defaultValue ?? '(required)'}`;

/** The rows of the Markdown tables between `## Settings` and the next `## `, as cells. */
function settingsTables(readme: string): string[][][] {
  const start = readme.indexOf('\n## Settings\n');
  const end = readme.indexOf('\n## ', start + 1);
  const tables: string[][][] = [];
  let current: string[][] | null = null;
  for (const line of readme.slice(start, end).split('\n')) {
    if (!line.startsWith('|')) {
      current = null;
      continue;
    }
    const cells = line
      .slice(1, -1)
      .split('|')
      .map((c) => c.trim());
    if (cells.every((c) => /^-+$/.test(c))) continue;
    if (current === null) {
      current = [];
      tables.push(current);
    }
    current.push(cells);
  }
  return tables;
}

/** `A` / `B` cells → their parts, backticks off; a default of `` is the empty string. */
function parts(cell: string): string[] {
  return cell.split(' / ').map((p) => p.trim().replace(/^`(.*)`$/, '$1'));
}

/** A row's settings: variables, flags and defaults zipped ("(required)" → null). */
function rowSettings(variables: string, flags: string, defaults: string, where: string): Setting[] {
  const v = parts(variables);
  const f = parts(flags);
  const d = parts(defaults);
  if (v.length !== f.length || v.length !== d.length)
    throw new Error(`README ${where}: ${v.length} variables, ${f.length} flags and ${d.length} defaults`);
  return v.map((variable, i) => ({
    variable,
    flag: f[i] as string,
    defaultValue: d[i] === '(required)' ? null : (d[i] as string),
  }));
}

/** The settings an app's `--help` lists: `--flag <value>  text (env VAR; default "x" | required)`. */
function helpSettings(app: string): Setting[] {
  const out = spawnSync(process.execPath, [path.join(ROOT, 'apps', app, 'dist', 'main.js'), '--help'], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  expect(out.status, `${app} --help: ${out.stderr}`).toBe(0);
  const settings: Setting[] = [];
  for (const line of out.stdout.split('\n')) {
    const option = /^\s+(--[a-z0-9-]+) <value>\s/.exec(line);
    if (option === null) continue;
    const env = /\(env ([A-Z0-9_]+); (?:default "(.*)"|required)\)\s*$/.exec(line);
    expect(env, `${app} --help: ${line.trim()} names no variable`).not.toBeNull();
    settings.push({
      variable: env?.[1] as string,
      flag: option[1] as string,
      defaultValue: env?.[2] ?? null,
    });
  }
  return settings;
}

describe('the README settings tables', () => {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const [shared, perRole] = settingsTables(readme);

  it('has the shared table and the per-role table', () => {
    expect(shared?.[0]).toEqual(['variable', 'flag', 'default', 'meaning']);
    expect(perRole?.[0]).toEqual(['role', 'variable', 'flag', 'default', 'meaning']);
  });

  const sharedSettings = (shared ?? [])
    .slice(1)
    .flatMap(([variable, flag, defaults], i) =>
      rowSettings(variable ?? '', flag ?? '', defaults ?? '', `shared row ${i + 1}`),
    );
  const byRole = new Map<string, Setting[]>();
  for (const [i, [role, variable, flag, defaults]] of (perRole ?? []).slice(1).entries()) {
    const list = byRole.get(role ?? '') ?? [];
    list.push(...rowSettings(variable ?? '', flag ?? '', defaults ?? '', `${role} row ${i + 1}`));
    byRole.set(role ?? '', list);
  }

  it('names only roles that are apps, and every role app', () => {
    expect([...byRole.keys()].sort()).toEqual(Object.keys(APPS).sort());
  });

  for (const [role, app] of Object.entries(APPS)) {
    it(`lists exactly what ${app} --help says (${role})`, () => {
      const documented = [...sharedSettings, ...(byRole.get(role) ?? [])].map(key).sort();
      expect(documented).toEqual(helpSettings(app).map(key).sort());
    });
  }
});
