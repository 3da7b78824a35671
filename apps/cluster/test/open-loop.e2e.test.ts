import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { commandsBy, parseProfile } from '@paxos/client/profile';
import { roleBinary } from '@paxos/launcher';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClientLine } from '../src/cluster.ts';
import { chosenFromLogs, readAcks, startCluster, unchosenAcks } from './helpers.ts';

type Progress = Extract<ClientLine, { type: 'progress' }>;

// One process per role keeps the cluster light on a small machine; one group, f = 1.
const SHAPE = { proposers: 1, batchers: 1, proxyLeaders: 1, unbatchers: 1, groups: 1 };

let env: Awaited<ReturnType<typeof startCluster>>;
beforeAll(async () => {
  env = await startCluster(27000, SHAPE);
});
afterAll(async () => {
  await env?.stop();
});

describe('open-loop load generator', () => {
  it('stays closed loop by default, and reports so', async () => {
    const summary = await env.cluster.runClient({ clients: 2, window: 2, commands: 200 });
    expect(summary).toMatchObject({
      reason: 'commands done',
      mode: 'closed',
      submitted: 200,
      acknowledged: 200,
      offered: 200,
      shed: 0,
    });
    expect(summary.profile).toBeUndefined();
  });

  it('sheds what is due beyond MAX_OUTSTANDING while no reply comes, and sends nothing more', async () => {
    // With the unbatcher paused no command is acknowledged, so each client fills up to its bound:
    // 200/s for 2 s is 400 commands due, 2 clients x 50 go out, the other 300 are shed.
    env.cluster.kill('unbatcher-0', 'SIGSTOP');
    const progress: Progress[] = [];
    let summary: Extract<ClientLine, { type: 'summary' }>;
    try {
      summary = await env.cluster.runClient({
        clients: 2,
        targetRate: 200,
        maxOutstanding: 50,
        durationS: 2,
        reportMs: 250,
        onLine: (l) => l.type === 'progress' && progress.push(l),
      });
    } finally {
      env.cluster.kill('unbatcher-0', 'SIGCONT');
    }
    expect(summary).toMatchObject({
      reason: 'duration reached',
      mode: 'open',
      profile: '0:200',
      offered: 400,
      submitted: 100,
      shed: 300,
      acknowledged: 0,
    });
    expect(progress.length).toBeGreaterThan(0);
    for (const p of progress) {
      expect(p.pending).toBeLessThanOrEqual(100);
      expect(p.submitted + p.shed).toBeLessThanOrEqual(400);
    }
    expect(progress.at(-1)?.shed).toBeGreaterThan(0);
  });

  it('follows a two-step profile: every command due is sent, acknowledged once and chosen at its slot', async () => {
    // 300/s for 3 s, a 0.1 s climb, then 900/s to the end (DURATION_S 6): 900 + 60 + 2610 commands.
    const loadProfile = '0:300,3:300,3.1:900';
    const parsed = parseProfile(loadProfile);
    if (!parsed.ok) throw new Error(parsed.error);
    const due = Math.floor(commandsBy(parsed.profile, 6));
    expect(due).toBe(3570);

    const acksFile = path.join(env.workDir, 'acks.csv');
    const progress: Progress[] = [];
    const summary = await env.cluster.runClient({
      clients: 4,
      loadProfile,
      durationS: 6,
      drainS: 15,
      reportMs: 500,
      acksFile,
      onLine: (l) => l.type === 'progress' && progress.push(l),
    });
    console.log(
      `open loop ${loadProfile}: ${summary.submitted} submitted, ${summary.acknowledged} acknowledged, p50 ${summary.p50Ms} ms, p99 ${summary.p99Ms} ms; offered per progress line: ${progress.map((p) => p.offered).join(' ')}`,
    );
    expect(summary.reason).toBe('duration reached, every command acknowledged');
    expect(summary.mode).toBe('open');
    expect(summary.profile).toBe(loadProfile);
    // The sends follow the integral of the rate, so the count is the profile's, not roughly.
    expect(summary.shed).toBe(0);
    expect(summary.offered).toBe(due);
    expect(summary.submitted).toBe(due);
    expect(summary.acknowledged).toBe(due);

    // The step shows in `offered`: full intervals at 300/s, then full intervals at 900/s (a
    // command either way for whole counts), never more than the profile's top rate.
    const offered = progress.map((p) => p.offered);
    const low = offered.flatMap((o, i) => (Math.abs(o - 300) <= 15 ? [i] : []));
    const high = offered.flatMap((o, i) => (Math.abs(o - 900) <= 25 ? [i] : []));
    expect(low.length).toBeGreaterThanOrEqual(3);
    expect(high.length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...low)).toBeLessThan(Math.min(...high));
    for (const o of offered) expect(o).toBeLessThanOrEqual(925);
    // The last command is due at 6 s: once it is out, nothing more is offered while draining.
    for (const [i, p] of progress.entries())
      if (i > 0 && progress[i - 1]?.submitted === due) expect(p.offered).toBe(0);

    const acks = readAcks(acksFile);
    expect(acks).toHaveLength(due);
    expect(new Set(acks.map((a) => `${a.client}/${a.requestId}`)).size).toBe(due);
    // Round-robin over the clients: each got a quarter of the commands.
    const perClient = new Map<string, number>();
    for (const a of acks) perClient.set(a.client, (perClient.get(a.client) ?? 0) + 1);
    expect([...perClient.values()].sort((a, b) => a - b)).toEqual([892, 892, 893, 893]);

    await env.cluster.down();
    expect(unchosenAcks(acks, chosenFromLogs(env.workDir, 1))).toEqual([]);
    expect(env.exits.filter((e) => e.name.startsWith('client-'))).toEqual([
      { name: 'client-0', code: 0, signal: null },
      { name: 'client-1', code: 0, signal: null },
      { name: 'client-2', code: 0, signal: null },
    ]);
  });
});

describe('open-loop settings', () => {
  const run = (env: Record<string, string>) => {
    const result = spawnSync(process.execPath, [roleBinary('client')], {
      env: { PATH: process.env.PATH ?? '', ANNA_ROUTING: 'tcp://127.0.0.1:1', METRICS_PORT: '0', ...env },
      encoding: 'utf8',
      timeout: 20_000,
    });
    return { code: result.status, stderr: result.stderr.trim() };
  };

  it.each([
    [
      { TARGET_RATE: '100', LOAD_PROFILE: '0:100' },
      /^paxos-client: TARGET_RATE \(--target-rate\) is 100 and LOAD_PROFILE \(--load-profile\) is "0:100": expected one of them/,
    ],
    [
      { LOAD_PROFILE: '0:100,60:200,30:50' },
      /^paxos-client: LOAD_PROFILE \(--load-profile\): got "0:100,60:200,30:50", expected points t:rate .*\(point 3 at 30 s is not after point 2 at 60 s\)$/,
    ],
    [{ LOAD_PROFILE: '1:100' }, /LOAD_PROFILE .*\(the first point is at 1 s, not at 0\)$/],
    [{ TARGET_RATE: '-5' }, /^paxos-client: TARGET_RATE \(--target-rate\): got "-5", expected a number >= 0/],
    [
      { MAX_OUTSTANDING: '0' },
      /^paxos-client: MAX_OUTSTANDING \(--max-outstanding\): got "0", expected an integer >= 1$/,
    ],
  ])('%j: one line naming the setting, exit code 2', (settings, message) => {
    const { code, stderr } = run(settings);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr.split('\n')).toHaveLength(1);
  });
});
