/**
 * The packed artifact (scripts/pack-artifact.mjs) runs on its own: packed from the built apps,
 * unpacked outside the repository, every role and the directory start with a bare environment,
 * so zeromq, protobufjs, pino, … resolve from the artifact's own node_modules. Also checks the
 * AMI build script's syntax (and shellcheck, where installed).
 */

import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { AnnaClient, Membership } from '@paxos/anna-client';
import { type RoleName, roleEntryPoint } from '@paxos/launcher';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, sleep } from './helpers.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PACK = path.join(ROOT, 'scripts', 'pack-artifact.mjs');
const BUILD_AMI = path.join(ROOT, 'infra', 'ami', 'build-ami.sh');

// Every role; `satisfies` makes adding a RoleName without listing it here a type error.
const ROLES = Object.keys({
  directory: true,
  acceptor: true,
  matchmaker: true,
  'proxy-leader': true,
  unbatcher: true,
  proposer: true,
  batcher: true,
  client: true,
  mock: true,
} satisfies Record<RoleName, true>) as RoleName[];

interface PackResult {
  artifact: string;
  bytes: number;
  seconds: number;
  commit: string;
  dependencies: Record<string, string>;
}

let tmp = '';
let opt = '';
let packed: PackResult;
const children: ChildProcess[] = [];

/** What a systemd unit gives a role: a PATH, a HOME, nothing that points back at the repository. */
function bareEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin`, HOME: tmp, ...extra };
}

beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'paxos-artifact-e2e-'));
  opt = path.join(tmp, 'opt-paxos');
  mkdirSync(opt);
  // The test's builds are done (turbo: test depends on build, and this package on every app).
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [PACK, '--skip-build', '--prefer-offline', '--out-dir', path.join(tmp, 'out')],
    { cwd: ROOT, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
  );
  packed = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as PackResult;
  const started = performance.now();
  const tar = spawnSync('tar', ['-xzf', packed.artifact, '-C', opt], { encoding: 'utf8' });
  expect(tar.status, tar.stderr).toBe(0);
  console.log(
    `artifact ${path.basename(packed.artifact)}: ${(packed.bytes / 1024 / 1024).toFixed(1)} MiB, packed in ${packed.seconds} s, extracted in ${Math.round(performance.now() - started)} ms`,
  );
}, 90_000);

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (tmp !== '') rmSync(tmp, { recursive: true, force: true });
});

describe('packed artifact', () => {
  it('is unpacked outside the repository, with every entry point, VERSION and pinned dependencies', () => {
    expect(path.relative(ROOT, opt).startsWith('..')).toBe(true);
    const short = /^paxos-([0-9a-f]{7,40})\.tar\.gz$/.exec(path.basename(packed.artifact))?.[1] ?? '';
    expect(packed.commit.startsWith(short) && short !== '', packed.artifact).toBe(true);
    for (const role of ROLES) expect(existsSync(path.join(opt, roleEntryPoint(role))), role).toBe(true);
    expect(existsSync(path.join(opt, 'apps', 'cluster'))).toBe(false);
    expect(readFileSync(path.join(opt, 'VERSION'), 'utf8')).toContain(`commit=${packed.commit}`);
    const pkg = JSON.parse(readFileSync(path.join(opt, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    expect(Object.keys(pkg.dependencies)).toEqual(
      expect.arrayContaining(['zeromq', 'protobufjs', 'pino', 'prom-client', 'commander', 'zod']),
    );
    for (const [name, version] of Object.entries(pkg.dependencies)) {
      expect(version, name).toMatch(/^\d+\.\d+\.\d+/);
      const installed = JSON.parse(
        readFileSync(path.join(opt, 'node_modules', name, 'package.json'), 'utf8'),
      ) as { version: string };
      expect(installed.version, name).toBe(version);
    }
  });

  it('starts every role with --help from a bare environment', async () => {
    const results = await Promise.all(
      ROLES.map(
        (role) =>
          new Promise<{ role: RoleName; code: number | null; output: string }>((resolve) => {
            const child = spawn(process.execPath, [path.join(opt, roleEntryPoint(role)), '--help'], {
              cwd: tmp,
              env: bareEnv(),
              stdio: ['ignore', 'pipe', 'pipe'],
            });
            children.push(child);
            let output = '';
            child.stdout.on('data', (d: Buffer) => (output += d.toString()));
            child.stderr.on('data', (d: Buffer) => (output += d.toString()));
            child.on('close', (code) => resolve({ role, code, output }));
          }),
      ),
    );
    for (const r of results) {
      expect(r.code, `${r.role}: ${r.output}`).toBe(0);
      expect(r.output, r.role).toMatch(/^Usage: /m);
    }
  });

  it('prints every role\'s version, not "unknown": the artifact keeps each package.json beside its dist/', () => {
    for (const role of ROLES) {
      const out = spawnSync(process.execPath, [path.join(opt, roleEntryPoint(role)), '--version'], {
        cwd: tmp,
        env: bareEnv(),
        encoding: 'utf8',
        timeout: 20_000,
      });
      expect(out.status, `${role}: ${out.stderr}`).toBe(0);
      expect(out.stdout.trim(), role).toMatch(/^\d+\.\d+\.\d+$/);
    }
  });

  it('runs the directory and an acceptor that registers with it and serves /metrics', async () => {
    const t0 = performance.now();
    const directory = spawn(
      process.execPath,
      [
        path.join(opt, roleEntryPoint('directory')),
        '--port',
        '0',
        '--storage-port',
        '0',
        '--log-level',
        'warn',
      ],
      { cwd: tmp, env: bareEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(directory);
    const listening = await waitForLine(
      directory,
      /^anna-local listening routing=(\S+) storage=\S+$/m,
      15_000,
    );
    const directoryMs = performance.now() - t0;
    const routing = listening[1] ?? '';
    expect(routing).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);

    const [acceptorPort, metricsPort] = [await freePort(), await freePort()];
    const keyPrefix = `artifact-${Date.now().toString(36)}-`;
    const t1 = performance.now();
    const acceptor = spawn(process.execPath, [path.join(opt, roleEntryPoint('acceptor'))], {
      cwd: tmp,
      env: bareEnv({
        ANNA_ROUTING: routing,
        ANNA_KEY_PREFIX: keyPrefix,
        ACCEPTOR_GROUP_ID: '0',
        ACCEPTOR_ID: '0',
        ACCEPTOR_PORT: String(acceptorPort),
        METRICS_PORT: String(metricsPort),
        PRIVATE_IP: '127.0.0.1',
        DATA_DIR: path.join(tmp, 'data'),
        DRAIN_TIMEOUT_MS: '500',
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(acceptor);
    let acceptorMs = 0;
    // "listening" is logged once it is bound and connected to the directory.
    const [, metrics] = await Promise.all([
      waitForLine(acceptor, /"msg":"listening"/, 15_000, 'stderr'),
      waitForMetrics(acceptor, metricsPort, 15_000).then((text) => {
        acceptorMs = performance.now() - t1;
        return text;
      }),
    ]);
    expect(metrics).toContain('num_processed_messages');

    // Registered in its group: read back from the directory, as the proposers would.
    const client = await AnnaClient.connect({ routing });
    try {
      const membership = new Membership(client, { keyPrefix });
      const deadline = performance.now() + 10_000;
      while ((await membership.live('0')).length === 0 && performance.now() < deadline) await sleep(20);
      expect(await membership.live('0')).toHaveLength(1);
      const registeredMs = performance.now() - t1;
      console.log(
        `cold start from the artifact: directory listening after ${Math.round(directoryMs)} ms; acceptor /metrics after ${Math.round(acceptorMs)} ms, registered after ${Math.round(registeredMs)} ms`,
      );

      // SIGTERM: it leaves the directory, drains and exits 0; then the directory.
      expect(await stop(acceptor)).toBe(0);
      expect(await membership.live('0')).toEqual([]);
    } finally {
      await client.close();
    }
    expect(await stop(directory)).toBe(0);
  });
});

describe('infra/ami/build-ami.sh', () => {
  it('is valid bash, prints its help, and is shellcheck-clean where shellcheck is installed', () => {
    const syntax = spawnSync('bash', ['-n', BUILD_AMI], { encoding: 'utf8' });
    expect(syntax.status, syntax.stderr).toBe(0);
    const help = spawnSync('bash', [BUILD_AMI, '--help'], { encoding: 'utf8', env: bareEnv() });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^Usage: sudo bash build-ami\.sh/);
    if (spawnSync('shellcheck', ['--version']).status === 0) {
      const lint = spawnSync('shellcheck', [BUILD_AMI], { encoding: 'utf8' });
      expect(lint.status, lint.stdout).toBe(0);
    }
  });
});

/** Resolves with the match once the child's output matches; rejects on exit or timeout. */
function waitForLine(
  child: ChildProcess,
  pattern: RegExp,
  timeoutMs: number,
  stream: 'stdout' | 'stderr' = 'stdout',
): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let output = '';
    let other = '';
    const done = (err: Error | null, match?: RegExpMatchArray) => {
      clearTimeout(timer);
      child.stdout?.off('data', onOut);
      child.stderr?.off('data', onErr);
      child.off('exit', onExit);
      if (err === null && match !== undefined) resolve(match);
      else reject(err);
    };
    const check = () => {
      const match = output.match(pattern);
      if (match !== null) done(null, match);
    };
    const onOut = (d: Buffer) => {
      if (stream === 'stdout') output += d.toString();
      else other += d.toString();
      check();
    };
    const onErr = (d: Buffer) => {
      if (stream === 'stderr') output += d.toString();
      else other += d.toString();
      check();
    };
    const onExit = (code: number | null) =>
      done(new Error(`exited (${code}) before ${pattern}:\n${output}\n${other}`));
    const timer = setTimeout(
      () => done(new Error(`no ${pattern} within ${timeoutMs} ms:\n${output}\n${other}`)),
      timeoutMs,
    );
    child.stdout?.on('data', onOut);
    child.stderr?.on('data', onErr);
    child.on('exit', onExit);
  });
}

/** Polls /metrics until it answers 200; fails if the process exits first. */
async function waitForMetrics(child: ChildProcess, port: number, timeoutMs: number): Promise<string> {
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`acceptor exited (${child.exitCode}):\n${stderr}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return await res.text();
    } catch {
      // not listening yet
    }
    await sleep(20);
  }
  throw new Error(`no /metrics on port ${port} within ${timeoutMs} ms:\n${stderr}`);
}

/** SIGTERM, then SIGKILL after 10 s; resolves with the exit code (null when killed). */
function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    child.kill('SIGTERM');
  });
}
