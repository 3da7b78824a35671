#!/usr/bin/env node
/**
 * Packs the built role processes into one self-contained tarball for EC2 (Linux x86_64):
 *
 *   apps/<role>/dist/…              every role app (not apps/cluster, the local-cluster tooling),
 *   apps/<role>/package.json        with its name and version (what --version prints)
 *   packages/anna-client/dist/…     the directory (server-cli.js)
 *   package.json, node_modules/     the npm dependencies the bundles import, pinned to the
 *                                   versions installed in this workspace (npm install)
 *   VERSION                         commit, dirty flag, date, the Node that packed it
 *
 * The paths match the repository, so `/opt/paxos/<roleEntryPoint(role)>` runs once the tarball
 * is unpacked into /opt/paxos (see infra/ami/README.md).
 *
 *   node scripts/pack-artifact.mjs [--out-dir DIR] [--skip-build] [--prefer-offline] [--keep-stage]
 *
 * Prints one JSON line to stdout ({ artifact, bytes, seconds, … }) and one readable line to
 * stderr. A failure prints one line naming what went wrong and exits 1 (2 for a bad flag).
 */

import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** apps/* that are not role processes. */
const NOT_ROLES = new Set(['cluster']);
/** The instances run Linux on x86_64: zeromq's prebuilt addons for other platforms are removed. */
const TARGET = { os: 'linux', arch: 'x64' };

const USAGE = `Usage: node scripts/pack-artifact.mjs [options]

Builds (turbo run build) and packs every role app and the directory, with their npm
dependencies, into <out-dir>/paxos-<shortsha>.tar.gz for /opt/paxos on a Linux x86_64 host.

Options:
  --out-dir <dir>    where the tarball goes (default: dist-artifact/)
  --skip-build       use the dist/ folders as they are
  --prefer-offline   npm install from the npm cache where it can
  --keep-stage       keep the staged tree (its path is in the JSON as "stage")
  -h, --help         this text`;

/** A failure the user can act on: printed as one line, no stack trace. */
export class PackError extends Error {
  name = 'PackError';
}

/**
 * @param {{ outDir?: string, skipBuild?: boolean, preferOffline?: boolean, keepStage?: boolean,
 *           log?: (line: string) => void }} [options]
 * @returns {{ artifact: string, bytes: number, seconds: number, commit: string, dirty: boolean,
 *             components: string[], dependencies: Record<string, string>, stage: string | null }}
 */
export function packArtifact(options = {}) {
  const started = performance.now();
  const log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
  const outDir = path.resolve(options.outDir ?? path.join(ROOT, 'dist-artifact'));

  if (!options.skipBuild) {
    log('pack-artifact: turbo run build');
    const turbo = path.join(ROOT, 'node_modules', '.bin', 'turbo');
    if (!existsSync(turbo)) throw new PackError(`${turbo} is missing: run pnpm install first`);
    run(turbo, ['run', 'build', '--output-logs=errors-only'], ROOT, 'turbo run build');
  }

  const components = findComponents();
  const dependencies = pinnedDependencies(components);
  const { commit, short, dirty } = gitVersion();

  const stage = mkdtempSync(path.join(tmpdir(), 'paxos-artifact-'));
  try {
    for (const c of components) {
      cpSync(path.join(ROOT, c.dir, 'dist'), path.join(stage, c.dir, 'dist'), { recursive: true });
      // Name and version only, beside dist/: what `--version` reads (../package.json from dist/).
      const { name, version } = JSON.parse(readFileSync(path.join(ROOT, c.dir, 'package.json'), 'utf8'));
      writeFileSync(
        path.join(stage, c.dir, 'package.json'),
        `${JSON.stringify({ name, version, private: true, type: 'module' }, null, 2)}\n`,
      );
    }
    writeFileSync(
      path.join(stage, 'package.json'),
      `${JSON.stringify(
        {
          name: 'paxos-artifact',
          version: '0.0.0',
          private: true,
          type: 'module',
          description: `Autoscaling Paxos role processes at ${short}${dirty ? ' (dirty)' : ''}`,
          dependencies,
        },
        null,
        2,
      )}\n`,
    );

    log(`pack-artifact: npm install ${Object.keys(dependencies).join(' ')}`);
    const npmArgs = ['install', '--omit=dev', '--no-audit', '--no-fund', '--ignore-scripts=false'];
    if (options.preferOffline) npmArgs.push('--prefer-offline');
    run('npm', npmArgs, stage, 'npm install', npmEnv());
    checkInstalled(stage, dependencies);
    pruneZeromq(stage);

    writeFileSync(
      path.join(stage, 'VERSION'),
      [
        `commit=${commit}`,
        `dirty=${dirty}`,
        `date=${new Date().toISOString()}`,
        `node=${process.version}`,
        `components=${components.map((c) => c.dir).join(',')}`,
        '',
      ].join('\n'),
    );

    mkdirSync(outDir, { recursive: true });
    const artifact = path.join(outDir, `paxos-${short}.tar.gz`);
    const partial = `${artifact}.partial`;
    try {
      run('tar', ['-czf', partial, '-C', stage, '.'], stage, 'tar');
      renameSync(partial, artifact);
    } finally {
      rmSync(partial, { force: true });
    }

    const result = {
      artifact,
      bytes: statSync(artifact).size,
      seconds: Math.round((performance.now() - started) / 100) / 10,
      commit,
      dirty,
      components: components.map((c) => c.dir),
      dependencies,
      stage: options.keepStage ? stage : null,
    };
    return result;
  } finally {
    if (!options.keepStage) rmSync(stage, { recursive: true, force: true });
  }
}

/** Every role app with its entry point, and the directory; each must be built. */
function findComponents() {
  const apps = readdirSync(path.join(ROOT, 'apps'), { withFileTypes: true })
    .filter((d) => d.isDirectory() && !NOT_ROLES.has(d.name))
    .filter((d) => existsSync(path.join(ROOT, 'apps', d.name, 'package.json')))
    .map((d) => ({ dir: `apps/${d.name}`, entry: 'dist/main.js' }))
    .sort((a, b) => a.dir.localeCompare(b.dir));
  const components = [...apps, { dir: 'packages/anna-client', entry: 'dist/server-cli.js' }];
  for (const c of components) {
    if (!existsSync(path.join(ROOT, c.dir, c.entry))) {
      throw new PackError(`${c.dir}/${c.entry} is missing: run pnpm build (or drop --skip-build)`);
    }
  }
  return components;
}

/**
 * The npm packages the components need at run time: the non-workspace dependencies each declares,
 * plus every bare import in its dist/ (which must be installed for it), at the version this
 * workspace resolved for it.
 */
function pinnedDependencies(components) {
  /** @type {Map<string, { version: string, from: string }>} */
  const pinned = new Map();
  for (const c of components) {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, c.dir, 'package.json'), 'utf8'));
    const names = new Set(
      Object.entries(pkg.dependencies ?? {})
        .filter(([, range]) => !String(range).startsWith('workspace:'))
        .map(([name]) => name),
    );
    for (const name of bareImports(path.join(ROOT, c.dir, 'dist'))) names.add(name);
    for (const name of names) {
      if (name.startsWith('@paxos/')) {
        throw new PackError(
          `${c.dir}/dist imports ${name}: workspace packages must be bundled (tsup noExternal)`,
        );
      }
      const manifest = path.join(ROOT, c.dir, 'node_modules', name, 'package.json');
      if (!existsSync(manifest)) {
        throw new PackError(`${c.dir} needs ${name}, which is not installed for it: run pnpm install`);
      }
      const { version } = JSON.parse(readFileSync(realpathSync(manifest), 'utf8'));
      const seen = pinned.get(name);
      if (seen !== undefined && seen.version !== version) {
        throw new PackError(
          `${name} is ${seen.version} for ${seen.from} but ${version} for ${c.dir}: one version is expected`,
        );
      }
      pinned.set(name, { version, from: c.dir });
    }
  }
  return Object.fromEntries(
    [...pinned.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([n, v]) => [n, v.version]),
  );
}

// A package specifier (never relative): `name`, `@scope/name`, either with a subpath; or `node:x`.
const SPEC = String.raw`((?:node:)?@?[a-z0-9][\w.-]*(?:/[\w.-]+)*)`;
/** Static imports and re-exports, side-effect imports, dynamic imports and require() calls. */
const IMPORTS = [
  new RegExp(String.raw`^\s*(?:import|export)\s[^;]*?\bfrom\s*["']${SPEC}["']`, 'gm'),
  new RegExp(String.raw`^\s*import\s*["']${SPEC}["']`, 'gm'),
  new RegExp(String.raw`\bimport\s*\(\s*["']${SPEC}["']\s*\)`, 'g'),
  new RegExp(String.raw`\b(?:__)?require\s*\(\s*["']${SPEC}["']\s*\)`, 'g'),
];

/** Package names of the bare specifiers imported by the .js files under `dir`. */
function bareImports(dir) {
  const names = new Set();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.js')) continue;
    const text = readFileSync(path.join(entry.parentPath, entry.name), 'utf8');
    for (const pattern of IMPORTS) {
      for (const match of text.matchAll(pattern)) {
        const spec = match[1] ?? '';
        if (isBuiltin(spec)) continue;
        const parts = spec.split('/');
        names.add(spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]);
      }
    }
  }
  return names;
}

function gitVersion() {
  const git = (args) => {
    const r = spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' });
    if (r.error !== undefined || r.status !== 0) {
      throw new PackError(`git ${args.join(' ')} failed in ${ROOT}: the artifact is named by its commit`);
    }
    return r.stdout.trim();
  };
  const commit = git(['rev-parse', 'HEAD']);
  const short = git(['rev-parse', '--short', 'HEAD']);
  const dirty = git(['status', '--porcelain', '--untracked-files=no']) !== '';
  return { commit, short, dirty };
}

/** What `pnpm run` sets for its children: pnpm's, not settings meant for npm. */
const PNPM_ENV = [
  /^pnpm_/i,
  /^npm_config_verify_deps_before_run$/i,
  /^npm_config_user_agent$/i,
  /^npm_(command|execpath|node_execpath)$/i,
  /^npm_(lifecycle|package)_/i,
];

/** npm's environment: this one, less what pnpm passed down (a user's npm_config_* stays). */
function npmEnv() {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (PNPM_ENV.some((re) => re.test(key))) delete env[key];
  return env;
}

function checkInstalled(stage, dependencies) {
  for (const [name, version] of Object.entries(dependencies)) {
    const manifest = path.join(stage, 'node_modules', name, 'package.json');
    const got = existsSync(manifest) ? JSON.parse(readFileSync(manifest, 'utf8')).version : 'nothing';
    if (got !== version) throw new PackError(`npm installed ${name}@${got}, expected ${version}`);
  }
}

/** zeromq ships prebuilt addons for every platform; only the target's are kept. */
function pruneZeromq(stage) {
  const build = path.join(stage, 'node_modules', 'zeromq', 'build');
  if (!existsSync(build)) return;
  if (!existsSync(path.join(build, TARGET.os, TARGET.arch))) {
    throw new PackError(`zeromq has no prebuilt addon for ${TARGET.os}-${TARGET.arch} in ${build}`);
  }
  for (const os of readdirSync(build, { withFileTypes: true })) {
    if (!os.isDirectory()) continue;
    if (os.name !== TARGET.os) {
      rmSync(path.join(build, os.name), { recursive: true, force: true });
      continue;
    }
    for (const arch of readdirSync(path.join(build, os.name))) {
      if (arch !== TARGET.arch) rmSync(path.join(build, os.name, arch), { recursive: true, force: true });
    }
  }
}

/** Runs a command; a failure becomes one PackError line saying why (see gist). */
function run(command, args, cwd, what, env = process.env) {
  const r = spawnSync(command, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error !== undefined) {
    const code = /** @type {NodeJS.ErrnoException} */ (r.error).code;
    throw new PackError(
      code === 'ENOENT' ? `${what}: ${command} is not on PATH` : `${what}: ${r.error.message}`,
    );
  }
  if (r.status !== 0) {
    const last = gist(`${r.stderr}\n${r.stdout}`);
    throw new PackError(`${what} failed (exit ${r.status ?? r.signal})${last === '' ? '' : `: ${last}`}`);
  }
  return r.stdout;
}

/** The line of a failed command's output that says why: npm's code and message, else the last error. */
function gist(output) {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const npm = lines
    .filter((l) => /^npm (error|ERR!)/.test(l))
    .map((l) => l.replace(/^npm (error|ERR!)\s*/, ''));
  if (npm.length > 0) {
    const code = npm.find((l) => /^code \S+$/.test(l))?.slice('code '.length);
    const why = npm.find(
      (l) => l !== '' && !/^(code|syscall|errno|path|dest)\b|^at |^\d+$|complete log of this run/.test(l),
    );
    return [code, why].filter((x) => x !== undefined).join(': ');
  }
  return lines.findLast((l) => /err/i.test(l)) ?? lines.at(-1) ?? '';
}

function parseArgs(argv) {
  const options = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--out-dir') {
      const value = argv[++i];
      if (value === undefined || value.startsWith('--')) return { error: '--out-dir needs a directory' };
      options.outDir = value;
    } else if (arg.startsWith('--out-dir=')) options.outDir = arg.slice('--out-dir='.length);
    else if (arg === '--skip-build') options.skipBuild = true;
    else if (arg === '--prefer-offline') options.preferOffline = true;
    else if (arg === '--keep-stage') options.keepStage = true;
    else if (arg === '-h' || arg === '--help') return { help: true };
    else return { error: `unknown option ${arg}` };
  }
  return { options };
}

/** Relative to the working directory when under it, else absolute. */
function displayPath(file) {
  const relative = path.relative(process.cwd(), file);
  return relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
}

function formatBytes(n) {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`;
}

if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const parsed = parseArgs(process.argv.slice(2));
  if (parsed.help) {
    process.stdout.write(`${USAGE}\n`);
  } else if (parsed.error !== undefined) {
    process.stderr.write(`pack-artifact: ${parsed.error}\n${USAGE}\n`);
    process.exitCode = 2;
  } else {
    try {
      const result = packArtifact(parsed.options);
      process.stdout.write(`${JSON.stringify(result)}\n`);
      process.stderr.write(
        `packed ${displayPath(result.artifact)}: ${formatBytes(result.bytes)} in ${result.seconds} s (${result.commit.slice(0, 12)}${result.dirty ? ', dirty tree' : ''})\n`,
      );
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      process.stderr.write(`pack-artifact: ${message}\n`);
      process.exitCode = 1;
    }
  }
}
