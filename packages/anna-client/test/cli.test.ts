import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as zmq from 'zeromq';
import { freePort, portOf, useResources } from './helpers.ts';

const r = useResources();
const pkgDir = fileURLToPath(new URL('..', import.meta.url));

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs src/server-cli.ts under tsx (one process, so signals reach it directly). */
function runCli(args: string[]): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server-cli.ts', ...args], {
    cwd: pkgDir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  r.defer(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exit;
    }
  });
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function waitForLine(run: Run, pattern: RegExp, timeoutMs = 15_000): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = pattern.exec(run.stdout());
    if (m) return m;
    if (run.child.exitCode !== null) throw new Error(`anna-local exited early: ${run.stderr()}`);
    if (Date.now() > deadline) throw new Error(`no line matching ${pattern}; stderr: ${run.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('anna-local CLI', () => {
  it('prints both endpoints, serves clients, and exits 0 on SIGTERM', async () => {
    const run = runCli(['--port', '0', '--storage-port', '0', '--log-level', 'warn']);
    const m = await waitForLine(
      run,
      /^anna-local listening routing=(tcp:\/\/127\.0\.0\.1:\d+) storage=(tcp:\/\/127\.0\.0\.1:\d+)\n/,
    );
    const client = await r.client({ routing: m[1] as string, timeoutMs: 500 });
    await client.addToSet('k', ['v']);
    expect(await client.getSet('k')).toEqual(new Set(['v']));
    run.child.kill('SIGTERM');
    expect(await run.exit).toEqual({ code: 0, signal: null });
  });

  it('serves /metrics, /healthz and /readyz with --metrics-port, and logs role, instance and ISO times', async () => {
    const metricsPort = await freePort();
    const run = runCli(['--port', '0', '--storage-port', '0', '--metrics-port', String(metricsPort)]);
    const m = await waitForLine(run, /^anna-local listening routing=(\S+) storage=\S+\n/);
    const client = await r.client({ routing: m[1] as string, timeoutMs: 500 });
    await client.addToSet('k', ['v']);
    const base = `http://127.0.0.1:${metricsPort}`;
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^paxos_directory_keys\{role="directory",instance="directory"\} 1$/m);
    expect(metrics).toMatch(
      /^paxos_directory_requests_total\{type="key",role="directory",instance="directory"\} [1-9]/m,
    );
    expect(metrics).toMatch(/^paxos_ready\{role="directory",instance="directory"\} 1$/m);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${base}/`)).text()).toContain('/readyz');
    const line = JSON.parse(run.stderr().split('\n')[0] ?? '') as Record<string, unknown>;
    expect(line).toMatchObject({ role: 'directory', instance: 'directory' });
    expect(line.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    run.child.kill('SIGTERM');
    expect(await run.exit).toEqual({ code: 0, signal: null });
  });

  it('uses fixed ports when given', async () => {
    const port = await freePort();
    const storagePort = await freePort();
    const run = runCli([
      '--port',
      String(port),
      '--storage-port',
      String(storagePort),
      '--host',
      '127.0.0.1',
    ]);
    await waitForLine(
      run,
      new RegExp(`routing=tcp://127\\.0\\.0\\.1:${port} storage=tcp://127\\.0\\.0\\.1:${storagePort}`),
    );
    run.child.kill('SIGINT');
    expect((await run.exit).code).toBe(0);
  });

  it('exits 2 with one error line on a bad flag', async () => {
    const run = runCli(['--bogus']);
    expect((await run.exit).code).toBe(2);
    expect(run.stderr().trim().split('\n')).toHaveLength(1);
    expect(run.stderr()).toMatch(/unknown option '--bogus'/);
    const bad = runCli(['--port', 'abc']);
    expect((await bad.exit).code).toBe(2);
    expect(bad.stderr()).toMatch(/--port.*0-65535/);
  });

  it('exits 1 naming the endpoint when the port is in use', async () => {
    const holder = new zmq.Pull({ linger: 0 });
    await holder.bind('tcp://127.0.0.1:*');
    r.defer(() => holder.close());
    const endpoint = holder.lastEndpoint as string;
    const port = String(portOf(endpoint));
    const run = runCli(['--port', port, '--storage-port', '0']);
    expect((await run.exit).code).toBe(1);
    expect(run.stderr()).toContain(`${endpoint}: address already in use`);
  });
});
