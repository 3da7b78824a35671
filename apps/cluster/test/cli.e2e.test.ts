import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_TOPOLOGY, type ProcessSpec, planCluster, specPorts } from '@paxos/launcher';
import { afterEach, describe, expect, it } from 'vitest';
import { assertPortsFree, LocalCluster } from '../src/cluster.ts';
import { waitFor } from './helpers.ts';

const CLI = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'paxos-cli-'));
  dirs.push(d);
  return d;
}

/** Starts the CLI and resolves when a stdout line matches `ready`. */
function startCli(args: string[], ready: RegExp): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for ${ready}; output so far:\n${output}`)),
      60_000,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (ready.test(output)) {
        clearTimeout(timer);
        resolve({ child, output: () => output });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`exited with ${code} before ready:\n${output}`)));
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null
    ? Promise.resolve(child.exitCode)
    : new Promise((r) => child.once('exit', (code) => r(code)));
}

function allPorts(basePort: number): number[] {
  const plan = planCluster({ ...DEFAULT_TOPOLOGY, basePort });
  return [plan.directory as ProcessSpec, ...plan.processes].flatMap(specPorts);
}

describe('the cluster CLI', () => {
  it('up, status, scale, kill, down: a demo lifecycle leaves nothing behind', async () => {
    const dir = tempDir();
    const basePort = 24400;
    const { child, output } = await startCli(
      ['up', '--dir', dir, '--base-port', String(basePort), '--log-level', 'warn'],
      /cluster ready/,
    );

    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [CLI, ...args, '--dir', dir], { encoding: 'utf8', timeout: 30_000 });
    const status = cli('status');
    expect(status.status).toBe(0);
    expect(status.stdout).toMatch(/^acceptor groups: version 0: groups 0\[0,1,2\] 1\[0,1,2\]$/m);
    expect(status.stdout).toMatch(/^matchmakers: epoch 0: matchmaker-0, matchmaker-1, matchmaker-2$/m);
    expect(status.stdout).toMatch(/proposer-\d\s+ready\s+\d+\s+0\s+yes/);
    expect(status.stdout).toMatch(/matchmaker-2\s+ready\s+\d+/);
    expect(status.stdout.match(/ ready /g)?.length).toBeGreaterThanOrEqual(18);
    // -o json: one document on stdout, for a program.
    const json = JSON.parse(cli('status', '-o', 'json').stdout) as {
      leader: string;
      processes: { name: string; phase: string; leader: boolean }[];
    };
    expect(json.processes.find((p) => p.leader)?.name).toBe(json.leader);
    expect(json.processes.filter((p) => p.phase === 'ready').length).toBeGreaterThanOrEqual(18);

    // Resized by hand while it runs: new batchers start on fresh ports, the highest-numbered drain first.
    const out = cli('scale', 'batcher', '4');
    expect(out.stdout, out.stderr).toMatch(/batcher: 4 instances; started batcher-2, batcher-3/);
    const scaled = cli('status').stdout;
    expect(scaled).toMatch(/batcher-3\s+(starting|ready)\s+\d+/);
    const addedPorts = [...scaled.matchAll(/batcher-[23]\s+\S+\s+\d+\s+\d+\s+(\d+)/g)].map((m) =>
      Number(m[1]),
    );
    expect(addedPorts).toHaveLength(2);
    const back = cli('scale', 'batcher', '1');
    expect(back.stdout).toMatch(/batcher: 1 instance; drained and stopped batcher-1, batcher-2, batcher-3/);
    const after = cli('status').stdout;
    expect(after, after).not.toMatch(/^batcher-[123]/m);
    const refused = cli('scale', 'proposer', '3');
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/role must be one of batcher, proxy-leader, unbatcher, got "proposer"/);
    expect(cli('scale', 'batcher', '0').status).toBe(2);

    // An acceptor replaced while serving: a new id with an empty log; the old one retires and stops.
    const replaced = cli('replace', 'acceptor-g0-a2');
    expect(replaced.status, replaced.stderr).toBe(0);
    expect(replaced.stdout).toMatch(/configuration version 1: groups 0\[0,1,3\] 1\[0,1,2\]/);
    expect(replaced.stdout).toMatch(/started acceptor-g0-a3/);
    expect(replaced.stdout).toMatch(/served \d+ ms after the target was written/);
    expect(replaced.stdout).toMatch(/retired acceptor-g0-a2 \(logs kept\)/);
    const reconfigured = cli('status').stdout;
    expect(reconfigured).toMatch(/^acceptor groups: version 1: groups 0\[0,1,3\] 1\[0,1,2\]$/m);
    expect(reconfigured).toMatch(/acceptor-g0-a3\s+(starting|ready)\s+\d+/);
    expect(reconfigured).not.toMatch(/^acceptor-g0-a2\s/m);
    addedPorts.push(
      ...[...reconfigured.matchAll(/acceptor-g0-a3\s+\S+\s+\d+\s+\d+\s+(\d+)/g)].map((m) => Number(m[1])),
    );
    // A matchmaker replaced while serving: a new id with no state, bootstrapped by the leader.
    const newMatchmaker = cli('replace', 'matchmaker-0');
    expect(newMatchmaker.status, newMatchmaker.stderr).toBe(0);
    expect(newMatchmaker.stdout).toMatch(/^matchmakers matchmaker-3, matchmaker-1, matchmaker-2$/m);
    expect(newMatchmaker.stdout).toMatch(/retired matchmaker-0 \(state kept\)/);
    const rematched = cli('status').stdout;
    expect(rematched).toMatch(/^matchmakers: epoch 1: matchmaker-3, matchmaker-1, matchmaker-2$/m);
    expect(rematched).not.toMatch(/^matchmaker-0\s/m);
    addedPorts.push(
      ...[...rematched.matchAll(/matchmaker-3\s+\S+\s+\d+\s+\d+\s+(\d+)/g)].map((m) => Number(m[1])),
    );
    expect(cli('replace', 'matchmaker-0').status).toBe(1); // no longer a member
    expect(cli('replace', 'proposer-0').status).toBe(2);
    expect(cli('reconfigure', '--groups', '0').status).toBe(2);

    const kill = spawnSync(process.execPath, [CLI, 'kill', 'batcher-0', '--dir', dir], { encoding: 'utf8' });
    expect(kill.stdout).toMatch(/killed batcher-0/);
    const killMatchmaker = cli('kill', 'matchmaker-1');
    expect(killMatchmaker.stdout).toMatch(/killed matchmaker-1/);
    expect(
      spawnSync(process.execPath, [CLI, 'kill', 'nobody', '--dir', dir], { encoding: 'utf8' }).status,
    ).toBe(1);

    const down = spawnSync(process.execPath, [CLI, 'down', '--dir', dir], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(down.stdout, output()).toMatch(/cluster stopped/);
    expect(await exited(child)).toBe(0);
    await expect(
      assertPortsFree('127.0.0.1', [...allPorts(basePort), ...addedPorts]),
    ).resolves.toBeUndefined();
  });

  it('a manager killed with SIGKILL leaves nothing behind: every process, the directory too, follows it', async () => {
    const dir = tempDir();
    const basePort = 27800;
    const { child } = await startCli(
      ['up', '--dir', dir, '--base-port', String(basePort), '--log-level', 'warn'],
      /cluster ready/,
    );
    child.kill('SIGKILL');
    // assertPortsFree throws while a port is held; waitFor retries until it does not.
    await waitFor('every port of the cluster free', 30_000, async () => {
      await assertPortsFree('127.0.0.1', allPorts(basePort));
      return true;
    });
  });

  it('start runs load with a live display; Ctrl-C prints the summary and stops every process', async () => {
    const dir = tempDir();
    const basePort = 24500;
    const { child, output } = await startCli(
      [
        'start',
        '--dir',
        dir,
        '--base-port',
        String(basePort),
        '--duration',
        '0',
        '--clients',
        '8',
        '--log-level',
        'warn',
      ],
      /Driving 8 closed-loop clients/,
    );
    await new Promise((r) => setTimeout(r, 3000));
    child.kill('SIGINT');
    expect(await exited(child)).toBe(0);
    // The summary: aligned name/value lines (not console.table's quoted cells).
    expect(output()).toMatch(/^throughput \(commands\/s\)\s+[\d,]+$/m);
    expect(output()).toMatch(/^leader\s+proposer-\d$/m);
    await expect(assertPortsFree('127.0.0.1', allPorts(basePort))).resolves.toBeUndefined();
  });

  it('start: Ctrl-C while the cluster is still starting stops every process, exit 130', async () => {
    const dir = tempDir();
    const basePort = 24500;
    const { child } = await startCli(
      ['start', '--dir', dir, '--base-port', String(basePort), '--log-level', 'warn'],
      /Starting a local cluster/,
    );
    child.kill('SIGINT');
    expect(await exited(child)).toBe(130);
    await expect(assertPortsFree('127.0.0.1', allPorts(basePort))).resolves.toBeUndefined();
  });

  it('up --cpu-quota and a shape of its own: every role process capped in a cgroup, not the directory, and down removes them', async () => {
    const dir = tempDir();
    const basePort = 27400;
    const shape = ['--groups', '1', '--batchers', '3', '--proxy-leaders', '1', '--unbatchers', '1'];
    const { child, output } = await startCli(
      [
        'up',
        '--dir',
        dir,
        '--base-port',
        String(basePort),
        '--log-level',
        'warn',
        '--cpu-quota',
        '0.5',
        ...shape,
      ],
      /cluster ready/,
    );
    const processes = LocalCluster.readState(dir)?.processes ?? [];
    const count = (role: string) => processes.filter((p) => p.role === role).length;
    expect(['acceptor', 'matchmaker', 'proxy-leader', 'unbatcher', 'proposer', 'batcher'].map(count)).toEqual(
      [3, 3, 1, 1, 2, 3],
    );
    const groups = processes.filter((p) => p.name !== 'directory').map((p) => p.cgroup);
    expect(groups).toHaveLength(13);
    expect(processes.find((p) => p.name === 'directory')?.cgroup).toBeNull();
    if (/no CPU quota: /.test(output())) {
      // Not root, or no cpu controller: the cluster runs uncapped and says why.
      expect(groups.every((g) => g === null)).toBe(true);
    } else {
      expect(output()).toMatch(/CPU quota 0\.5 core per role process \(cgroup v[12] cpu/);
      for (const group of groups) expect(existsSync(group as string), String(group)).toBe(true);
    }

    const down = spawnSync(process.execPath, [CLI, 'down', '--dir', dir], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(down.stdout, output()).toMatch(/cluster stopped/);
    expect(await exited(child)).toBe(0);
    const left = groups.flatMap((g) => (g === null ? [] : [g, path.dirname(g)])).filter((g) => existsSync(g));
    expect(left).toEqual([]);
    await expect(assertPortsFree('127.0.0.1', allPorts(basePort))).resolves.toBeUndefined();
  });

  it('a bad flag is one clear line and exit code 2', () => {
    const result = spawnSync(process.execPath, [CLI, 'start', '--f', 'x'], { encoding: 'utf8' });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/--f must be an integer >= 0, got "x"/);
  });

  it('--version prints the version; a bad --log-level or -o is one clear line and exit code 2', () => {
    const version = spawnSync(process.execPath, [CLI, '--version'], { encoding: 'utf8' });
    expect(version.status).toBe(0);
    expect(version.stdout).toBe('0.1.0\n');
    const level = spawnSync(process.execPath, [CLI, 'up', '--log-level', 'verbose'], { encoding: 'utf8' });
    expect(level.status).toBe(2);
    expect(level.stderr.trim().split('\n')).toHaveLength(1);
    expect(level.stderr).toMatch(
      /--log-level must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"/,
    );
    const output = spawnSync(process.execPath, [CLI, 'status', '-o', 'yaml'], { encoding: 'utf8' });
    expect(output.status).toBe(2);
    expect(output.stderr).toMatch(/-o\/--output must be text or json, got "yaml"/);
  });

  it('a process that refuses its configuration (exit 2) fails `up` at once with its line, exit 2, and is not restarted', () => {
    const dir = tempDir();
    const started = performance.now();
    const result = spawnSync(
      process.execPath,
      [CLI, 'up', '--dir', dir, '--base-port', '22600', '--log-level', 'warn'],
      // Every role process inherits it and refuses it; the directory does not read it.
      { encoding: 'utf8', timeout: 60_000, env: { ...process.env, TRACE_SAMPLE: 'x' } },
    );
    expect(result.status, result.stderr).toBe(2);
    expect(result.stderr).toMatch(
      /^cluster up failed: \S+ exited with code 2 \(bad configuration\) and is not restarted: paxos-\S+: TRACE_SAMPLE \(--trace-sample\): got "x", expected an integer >= 0$/m,
    );
    expect(result.stdout).toMatch(/exited \(code 2\), not restarted: paxos-/);
    expect(result.stdout).not.toMatch(/restarting/);
    // Well within the 20 s it would wait for a leader.
    expect(performance.now() - started).toBeLessThan(20_000);
  });

  it('a CPU quota outside (0, cores] is one clear line and exit code 2', () => {
    const result = spawnSync(process.execPath, [CLI, 'up', '--cpu-quota', '0'], { encoding: 'utf8' });
    expect(result.status).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/--cpu-quota must be a number of cores >= 0\.01 and <= \d+, got "0"/);
  });
});
