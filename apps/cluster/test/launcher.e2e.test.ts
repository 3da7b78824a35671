import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Launcher, LocalLauncher, type ProcessSpec } from '@paxos/launcher';
import { afterAll, describe, expect, it } from 'vitest';
import { sleep, waitFor } from './helpers.ts';

const logDir = mkdtempSync(path.join(tmpdir(), 'paxos-launcher-'));
afterAll(() => rmSync(logDir, { recursive: true, force: true }));

const directory: ProcessSpec = {
  name: 'directory',
  role: 'directory',
  env: {},
  args: ['--host', '127.0.0.1', '--port', '0', '--storage-port', '0', '--log-level', 'warn'],
  ports: [],
  metricsPort: null,
  restart: true,
};

describe('LocalLauncher through the Launcher interface', () => {
  it('launches, lists, restarts a killed process and stops it for good', async () => {
    const local = new LocalLauncher({ logDir, restartDelayMs: 50 });
    const launcher: Launcher = local;
    const started = await launcher.launch(directory);
    expect(started).toMatchObject({
      name: 'directory',
      role: 'directory',
      state: 'running',
      address: '127.0.0.1',
    });
    const firstPid = started.id;
    expect(firstPid).toMatch(/^\d+$/);
    expect((await launcher.list()).map((i) => i.name)).toEqual(['directory']);

    local.kill('directory', 'SIGKILL');
    let after = (await local.list())[0];
    for (let i = 0; i < 100 && (after?.restarts ?? 0) === 0; i++) {
      await sleep(50);
      after = (await local.list())[0];
    }
    expect(after?.restarts).toBe(1);
    expect(after?.id).not.toBe(firstPid);

    await launcher.stop('directory', 2000);
    expect(await launcher.list()).toEqual([]);
    expect(() => process.kill(Number(after?.id), 0)).toThrow();
  });

  it('reports a process that is not restarted as stopped from the moment it exits', async () => {
    const states: string[] = [];
    const local: LocalLauncher = new LocalLauncher({
      logDir,
      onEvent: (e) => {
        if (e.event === 'exited') states.push(local.processes()[0]?.state ?? 'gone');
      },
    });
    await local.launch({ ...directory, name: 'once', restart: false });
    local.kill('once', 'SIGKILL');
    for (let i = 0; i < 100 && states.length === 0; i++) await sleep(50);
    expect(states).toEqual(['stopped']);
    expect((await local.list()).map((i) => i.state)).toEqual(['stopped']);
    await local.stop('once');
  });

  it('does not restart a process that exits with code 2 (a bad configuration), and reports its reason', async () => {
    const events: string[] = [];
    const messages: (string | undefined)[] = [];
    const local = new LocalLauncher({
      logDir,
      restartDelayMs: 50,
      onEvent: (e) => {
        events.push(`${e.event}:${e.code ?? ''}`);
        if (e.event === 'exited') messages.push(e.message);
      },
    });
    await local.launch({ ...directory, name: 'misconfigured', args: ['--port', 'not-a-port'] });
    for (let i = 0; i < 100 && !events.some((e) => e.startsWith('exited')); i++) await sleep(50);
    await sleep(300);
    expect(events).toEqual(['started:', 'exited:2']);
    // The last line it wrote (stderr goes to its log file).
    expect(messages).toEqual([
      "error: option '--port <port>' argument 'not-a-port' is invalid. expected a port number 0-65535 (0 picks a free port).",
    ]);
    expect((await local.list()).map((i) => [i.state, i.restarts])).toEqual([['stopped', 0]]);
    await local.stop('misconfigured');
  });

  it("starts a process with its spec's env and restarts it with restartEnv over it", async () => {
    const local = new LocalLauncher({ logDir, restartDelayMs: 50 });
    const environ = (pid: number | null) =>
      readFileSync(`/proc/${pid}/environ`, 'utf8')
        .split('\0')
        .filter((kv) => kv.startsWith('PAXOS_TEST_'));
    const first = await local.launch({
      ...directory,
      name: 'restarted',
      env: { PAXOS_TEST_START: 'first', PAXOS_TEST_KEPT: 'kept' },
      restartEnv: { PAXOS_TEST_START: 'again' },
    });
    expect(environ(first.pid).sort()).toEqual(['PAXOS_TEST_KEPT=kept', 'PAXOS_TEST_START=first']);
    local.kill('restarted', 'SIGKILL');
    const again = await waitFor('a restart', 5000, () =>
      local.processes().find((i) => i.restarts === 1 && i.state === 'running' && i.pid !== null),
    );
    expect(environ(again.pid).sort()).toEqual(['PAXOS_TEST_KEPT=kept', 'PAXOS_TEST_START=again']);
    await local.stop('restarted', 2000);
  });

  it('restarts a process that keeps exiting after a wait that doubles each time, and says so', async () => {
    const restarting: { delayMs?: number; quickExits?: number }[] = [];
    const exits: (number | null | undefined)[] = [];
    const local = new LocalLauncher({
      logDir,
      restartDelayMs: 20,
      onEvent: (e) => {
        if (e.event === 'restarting') restarting.push({ delayMs: e.delayMs, quickExits: e.quickExits });
        if (e.event === 'exited') exits.push(e.code);
      },
    });
    // An acceptor whose log directory cannot be made (its parent is a file) fails at every start, exit 1.
    const file = path.join(logDir, 'not-a-directory');
    writeFileSync(file, '');
    await local.launch({
      name: 'failing-acceptor',
      role: 'acceptor',
      env: {
        ANNA_ROUTING: 'tcp://127.0.0.1:9',
        ACCEPTOR_GROUP_ID: '0',
        ACCEPTOR_ID: '0',
        DATA_DIR: path.join(file, 'data'),
        LOG_LEVEL: 'warn',
      },
      ports: [],
      metricsPort: null,
      restart: true,
    });
    await waitFor('three restarts', 30_000, () => (restarting.length >= 3 ? true : undefined), 20);
    await local.stop('failing-acceptor', 2000);
    expect(exits.slice(0, 3)).toEqual([1, 1, 1]);
    expect(restarting.slice(0, 3)).toEqual([
      { delayMs: 20, quickExits: 1 },
      { delayMs: 40, quickExits: 2 },
      { delayMs: 80, quickExits: 3 },
    ]);
    const log = readFileSync(path.join(logDir, 'failing-acceptor.log'), 'utf8');
    expect(log).toContain('ENOTDIR');
    expect(log).toContain('"msg":"could not start"');
  });

  it('is restarting, not running, between a crash and the restart', async () => {
    const states: string[] = [];
    const local: LocalLauncher = new LocalLauncher({
      logDir,
      restartDelayMs: 50,
      onEvent: (e) => {
        if (e.event === 'exited') states.push(local.processes()[0]?.state ?? 'gone');
      },
    });
    await local.launch({ ...directory, name: 'again' });
    local.kill('again', 'SIGKILL');
    for (let i = 0; i < 100 && states.length === 0; i++) await sleep(50);
    expect(states).toEqual(['restarting']);
    await local.stop('again', 2000);
  });

  it('runs children under a command prefix that execs them, and stops a paused child with SIGTERM', async () => {
    // `env` execs the rest of its arguments, as `ip netns exec` does.
    const local = new LocalLauncher({ logDir, commandPrefix: ['env', 'PAXOS_UNDER_PREFIX=1'] });
    const started = await local.launch({ ...directory, name: 'prefixed', restart: false });
    const pid = Number(started.id);
    await sleep(300);
    expect(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()).toBe('node');
    expect(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')).toContain('PAXOS_UNDER_PREFIX=1');

    local.kill('prefixed', 'SIGSTOP');
    const stopping = performance.now();
    await local.stop('prefixed', 20_000);
    // Without the SIGCONT that follows its SIGTERM, the stop would wait for the SIGKILL at 20 s.
    expect(performance.now() - stopping).toBeLessThan(10_000);
    expect(() => process.kill(pid, 0)).toThrow();
  });

  it('keeps a process with a cpuQuota in a cgroup of its own, again after a restart, and removes it with the process', async () => {
    const local = new LocalLauncher({ logDir, restartDelayMs: 50 });
    const quota = local.cpuQuotaStatus(0.25);
    const started = await local.launch({ ...directory, name: 'capped', cpuQuota: 0.25 });
    await local.launch({ ...directory, name: 'uncapped' });
    try {
      expect(local.cgroupOf('uncapped')).toBeNull();
      if (!quota.inForce) {
        // Not root, or no cpu controller: the process runs uncapped and the reason is one line.
        expect(quota.description).toMatch(/^no CPU quota: \S[^\n]*$/);
        expect(local.cgroupOf('capped')).toBeNull();
        return;
      }
      expect(quota.description).toMatch(/^CPU quota 0\.25 core per role process \(cgroup v[12] cpu/);
      const group = local.cgroupOf('capped') as string;
      const members = () => readFileSync(path.join(group, 'cgroup.procs'), 'utf8').trim().split('\n');
      expect(members()).toEqual([started.id]);
      const limitFile = ['cpu.max', 'cpu.cfs_quota_us'].map((f) => path.join(group, f)).find(existsSync);
      expect(readFileSync(limitFile as string, 'utf8')).toMatch(/^25000\b/);

      local.kill('capped', 'SIGKILL');
      let after = local.processes()[0];
      for (let i = 0; i < 100 && !(after?.restarts === 1 && after.state === 'running'); i++) {
        await sleep(50);
        after = local.processes()[0];
      }
      expect(after?.id).not.toBe(started.id);
      expect(local.cgroupOf('capped')).toBe(group);
      expect(members()).toEqual([after?.id]);

      await local.stop('capped', 2000);
      expect(existsSync(group)).toBe(false);
      expect(existsSync(path.dirname(group))).toBe(false);
    } finally {
      await local.stop('capped', 2000);
      await local.stop('uncapped', 2000);
    }
  });
  it('with capOnceReady, a capped process starts without a limit and gets its quota once ready', async () => {
    let markReady = () => {};
    const ready = new Promise<void>((resolve) => {
      markReady = resolve;
    });
    const local = new LocalLauncher({ logDir, capOnceReady: () => ready });
    if (!local.cpuQuotaStatus(0.25).inForce) return; // no cgroups here: the test above checks the reason
    await local.launch({ ...directory, name: 'warming', cpuQuota: 0.25 });
    try {
      const group = local.cgroupOf('warming') as string;
      const limit = () =>
        readFileSync(
          ['cpu.max', 'cpu.cfs_quota_us'].map((f) => path.join(group, f)).find(existsSync) as string,
          'utf8',
        ).trim();
      expect(limit()).toMatch(/^(-1|max\b)/);
      markReady();
      await waitFor('the quota once ready', 5000, () => (/^25000\b/.test(limit()) ? true : undefined));
    } finally {
      await local.stop('warming', 2000);
    }
  });

  describe('stop of a role that drains', () => {
    // An acceptor whose directory is unreachable never finishes starting; told to stop, it waits
    // out its drain timeout (nothing to drain) and exits 0, which makes its drain easy to time.
    const stuck = (name: string, env: Record<string, string>): ProcessSpec => ({
      name,
      role: 'acceptor',
      env: {
        ANNA_ROUTING: 'tcp://127.0.0.1:1',
        ACCEPTOR_GROUP_ID: '0',
        ACCEPTOR_ID: '0',
        ACCEPTOR_PORT: '0',
        METRICS_PORT: '0',
        DATA_DIR: path.join(logDir, name),
        ...env,
      },
      ports: [],
      metricsPort: null,
      restart: false,
    });
    const listening = (name: string) =>
      waitFor(
        `${name} to listen`,
        15_000,
        () =>
          readFileSync(path.join(logDir, `${name}.log`), 'utf8').includes('"msg":"listening"') || undefined,
      );

    it('by default grants the whole drain timeout, however long its directory poll makes it', async () => {
      const events: string[] = [];
      const local = new LocalLauncher({
        logDir,
        onEvent: (e) => events.push([e.event, e.code ?? e.signal].filter((x) => x != null).join(':')),
      });
      // Four 1.4 s polls: a 5.6 s drain, longer than a fixed 5 s grace.
      await local.launch(stuck('slow-poll', { DIRECTORY_POLL_MS: '1400' }));
      try {
        await listening('slow-poll');
        const stopping = performance.now();
        await local.stop('slow-poll');
        expect(performance.now() - stopping).toBeGreaterThanOrEqual(5500);
        expect(events).toEqual(['started', 'exited:0']);
      } finally {
        await local.stop('slow-poll', 1000);
      }
    });

    it('reports a process it had to SIGKILL after the grace it was given', async () => {
      const events: string[] = [];
      const local = new LocalLauncher({
        logDir,
        onEvent: (e) => events.push([e.event, e.code ?? e.signal].filter((x) => x != null).join(':')),
      });
      await local.launch(stuck('long-drain', { DRAIN_TIMEOUT_MS: '20000' }));
      try {
        await listening('long-drain');
        const stopping = performance.now();
        await local.stop('long-drain', 300);
        expect(performance.now() - stopping).toBeLessThan(5000);
        expect(events).toEqual(['started', 'killed-after-timeout:SIGKILL', 'exited:SIGKILL']);
      } finally {
        await local.stop('long-drain', 1000);
      }
    });
  });
});
