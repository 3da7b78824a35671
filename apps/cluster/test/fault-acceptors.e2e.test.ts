import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import path from 'node:path';
import { describeLauncherEvent, MAX_RESTART_DELAY_MS } from '@paxos/launcher';
import { acceptorLogDir } from '@paxos/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InstancePhaseView, LocalCluster } from '../src/cluster.ts';
import { RECOVERY, runWithFault } from './fault-run.ts';
import {
  chosenFromVotes,
  readAcceptorLogs,
  readAcks,
  sleep,
  startCluster,
  tracedVotes,
  unchosenAcks,
  unloggedVotes,
  waitFor,
} from './helpers.ts';

/**
 * Acceptors under steady load with fsync on (the default), on one cluster: first kill -9 in a
 * loop (one acceptor of a group at a time, and once a whole group), then one acceptor's disk
 * fills up. Proxy leaders trace every vote they receive (TRACE_SAMPLE=1), so that the end can
 * check each vote against its voter's log; acceptors log at info (their recovery lines).
 */
/** Role ports from 31000, metrics ports from 31300: all inside 31000–31900. */
const BASE_PORT = 31000;
const METRICS_BASE_PORT = 31300;
const GROUPS = 2;
const F = 1;
/** Its log directory is a tmpfs of its own: the disk that fills. */
const DISK_VICTIM = 'acceptor-g1-a1';
/** Big enough for everything the kill loop writes; shrunk to what is used plus `FILL_SLACK` to fill it. */
const DISK_BYTES = 64 * 1024 * 1024;
const FILL_SLACK = 64 * 1024;
const KILL_LOOP_MS = 15_000;

let env: Awaited<ReturnType<typeof startCluster>> | undefined;
let workDir: string | undefined;
/** The victim's tmpfs: its mount point, or why there is none (then the disk test is skipped). */
const disk: { dir: string | null; reason: string | null } = { dir: null, reason: 'not set up' };
const acksFiles: string[] = [];

beforeAll(async () => {
  env = await startCluster(
    BASE_PORT,
    {
      metricsBasePort: METRICS_BASE_PORT,
      logLevel: 'warn',
      roleExtraEnv: {
        acceptor: { LOG_LEVEL: 'info' },
        'proxy-leader': { LOG_LEVEL: 'info', TRACE_SAMPLE: '1' },
      },
    },
    {},
    (cluster) => {
      workDir = cluster.workDir;
      mountDisk(logDirOf(cluster, DISK_VICTIM));
    },
  );
});

afterAll(async () => {
  // Every process first: nothing may hold a file on the tmpfs when it is unmounted.
  await env?.cluster.down();
  if (disk.dir !== null) unmount(disk.dir);
  if (env !== undefined) await env.stop();
  else if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true });
});

describe('acceptors crash and run out of disk under load, fsync on', () => {
  it('kill -9 of a random acceptor in a loop (at most f of a group down, once a whole group): each recovers from its log, the cluster keeps serving', async () => {
    const e = ready(env);
    const acceptors = e.cluster.processes.filter((p) => p.role === 'acceptor').map((p) => p.name);
    const kills = new Map<string, number>(acceptors.map((n) => [n, 0]));
    /** Killed and not yet ready again: name → its restarts when it was killed. */
    const down = new Map<string, number>();
    const groupOf = (name: string) => name.split('-')[1] as string;
    let wholeGroup = null as { group: string; backMs: number } | null;
    /** Outside the whole-group kill: the most acceptors of one group down at once. */
    let mostDownInAGroup = 0;

    const phases = async () => new Map((await e.cluster.phases()).map((p) => [p.name, p]));
    /** Forgets the killed acceptors that serve again (restarted, /readyz 200). */
    const refresh = async (): Promise<Map<string, InstancePhaseView>> => {
      const now = await phases();
      for (const [name, restarts] of down) {
        const p = now.get(name);
        if (p !== undefined && p.phase === 'ready' && p.restarts > restarts) down.delete(name);
      }
      return now;
    };
    const kill = (name: string, now: Map<string, InstancePhaseView>) => {
      down.set(name, now.get(name)?.restarts ?? 0);
      kills.set(name, (kills.get(name) ?? 0) + 1);
      e.cluster.kill(name, 'SIGKILL');
    };
    const allBack = (what: string) =>
      waitFor(
        what,
        30_000,
        async () => {
          await refresh();
          return down.size === 0 ? true : undefined;
        },
        50,
      );

    const durationS = 26;
    const loadStart = performance.now();
    let loopMs = 0;
    const r = await runWithFault(e, {
      fault: 'kill -9 loop over the acceptors',
      durationS,
      drainS: 10,
      warmup: 2000,
      giveUpMs: 10_000,
      acksFile: acksFile(e, 'kill-loop'),
      inject: async () => {
        const start = performance.now();
        // KILL_LOOP_MS, or less on a machine so slow that the warm-up took long: the load must
        // go on for a while after the loop.
        const end = Math.min(start + KILL_LOOP_MS, loadStart + (durationS - 8) * 1000);
        while (performance.now() < end) {
          const now = await refresh();
          if (wholeGroup === null && performance.now() - start >= KILL_LOOP_MS / 2) {
            await allBack('every acceptor serving again before a whole group is killed');
            const group = `g${Math.floor(Math.random() * GROUPS)}`;
            const current = await phases();
            const at = performance.now();
            for (const name of acceptors.filter((n) => groupOf(n) === group)) kill(name, current);
            await allBack(`every acceptor of ${group} serving again`);
            wholeGroup = { group, backMs: performance.now() - at };
            continue;
          }
          // At most f (one) of a group down: a victim from a group with none down, one of the
          // least killed so far so that every acceptor gets its turn, at random among those.
          const busy = new Set([...down.keys()].map(groupOf));
          const eligible = acceptors.filter((n) => !busy.has(groupOf(n)) && now.get(n)?.phase === 'ready');
          const fewest = Math.min(...eligible.map((n) => kills.get(n) ?? 0));
          const least = eligible.filter((n) => kills.get(n) === fewest);
          const victim = least[Math.floor(Math.random() * least.length)];
          if (victim !== undefined) {
            kill(victim, now);
            const inGroup = [...down.keys()].filter((n) => groupOf(n) === groupOf(victim)).length;
            mostDownInAGroup = Math.max(mostDownInAGroup, inGroup);
          }
          // The loop's pace (what the fault is), not a wait for anything: a kill every 0.2–0.6 s
          // while a group has none of its acceptors down.
          await sleep(200 + Math.random() * 400);
        }
        loopMs = performance.now() - start;
        await allBack('every acceptor serving again after the loop');
      },
    });

    const killed = [...kills.values()].reduce((a, b) => a + b, 0);
    const recoveries = acceptors.map((name) => ({ name, ...recoveryLines(e, name) }));
    const slowest = Math.max(...recoveries.flatMap((x) => x.recovered.map((l) => l.ms ?? 0)));
    const after = r.progress.filter((p) => p.at > r.faultEnd);
    console.log(
      `kill loop of ${Math.round(loopMs)} ms: ${killed} kills (${[...kills].map(([n, k]) => `${n} ${k}`).join(', ')}); whole group ${wholeGroup?.group ?? 'never'} back in ${Math.round(wholeGroup?.backMs ?? 0)} ms; longest gap without an ack during the loop ${Math.round(r.gaps.duringFaultMs)} ms, overall ${Math.round(r.gaps.longestMs)} ms; ${(after.at(-1)?.acknowledged ?? 0) - (after[0]?.acknowledged ?? 0)} acks after the loop; slowest log recovery ${slowest} ms`,
    );

    expect.soft(wholeGroup, 'a whole group was killed at once and came back').not.toBeNull();
    expect.soft(mostDownInAGroup, 'acceptors of one group down at once, single kills').toBe(F);
    for (const [name, k] of kills) expect.soft(k, `kills of ${name}`).toBeGreaterThan(0);
    // Each restart recovered the log it had (none started empty again); each kill was a restart.
    const restarts = new Map(e.cluster.instances().map((i) => [i.spec.name, i.restarts]));
    for (const x of recoveries) {
      expect.soft(x.created, `${x.name}: 'acceptor log created' lines`).toBe(1);
      expect.soft(x.recovered.length, `${x.name}: 'acceptor log recovered' lines`).toBe(restarts.get(x.name));
      expect.soft(restarts.get(x.name), `${x.name}: restarts`).toBe(kills.get(x.name));
    }
    // Kept serving: acknowledgements during and after the loop, never a stall over 5 s.
    expect
      .soft(after.length > 0 && (after.at(-1)?.acknowledged ?? 0) > (after[0]?.acknowledged ?? 0))
      .toBe(true);
    expect.soft(r.gaps.longestMs, 'longest ms without an ack').toBeLessThanOrEqual(RECOVERY.longestGapMs);
    expect.soft(r.gaps.resumeMs ?? Number.POSITIVE_INFINITY).toBeLessThanOrEqual(RECOVERY.resumeWithinMs);
    expect.soft(r.summary.acknowledged, 'commands acknowledged').toBe(r.summary.submitted);
  }, 120_000);

  it('a full disk: the acceptor stops (exit 1, one line naming the file and ENOSPC) without replying, is retried with back-off, the group serves on, and the acceptor comes back once there is room', async (ctx) => {
    if (disk.dir === null) ctx.skip(`no small disk for ${DISK_VICTIM}: ${disk.reason}`);
    const e = ready(env);
    const dir = disk.dir as string;
    const logFile = e.cluster.instances().find((i) => i.spec.name === DISK_VICTIM)?.logFile as string;
    const logStart = readFileSync(logFile).length;
    let mark = 0;
    let filledAt = 0;
    let failedAt = 0;
    let freedAt = 0;
    let backAt = 0;
    let fill = { used: 0, size: 0 };
    const victimEvents = () => e.events.slice(mark).filter((x) => x.name === DISK_VICTIM);
    const failedExits = () => victimEvents().filter((x) => x.event === 'exited');

    const r = await runWithFault(e, {
      fault: `disk of ${DISK_VICTIM} full`,
      durationS: 22,
      drainS: 10,
      warmup: 2000,
      giveUpMs: 10_000,
      acksFile: acksFile(e, 'disk-full'),
      inject: async (begins) => {
        await waitFor(`${DISK_VICTIM} serving`, 30_000, async () =>
          (await e.cluster.phases()).find((p) => p.name === DISK_VICTIM && p.phase === 'ready'),
        );
        mark = e.events.length;
        begins();
        filledAt = performance.now();
        fill = shrinkDisk(dir, FILL_SLACK);
        // Full: the next write fails and the acceptor stops.
        failedAt = (
          await waitFor('the acceptor to stop on the full disk', 60_000, () => failedExits()[0], 20)
        ).at;
        // Still full: each restart recovers, gets a phase-2a, fails again; the waits grow.
        await waitFor(
          'two more failed starts',
          60_000,
          () => (failedExits().length >= 3 ? true : undefined),
          50,
        );
        const restartsBefore = e.cluster.instances().find((i) => i.spec.name === DISK_VICTIM)?.restarts ?? 0;
        freedAt = performance.now();
        growDisk(dir, DISK_BYTES);
        await waitFor(`${DISK_VICTIM} back once its disk has room`, 30_000, async () =>
          (await e.cluster.phases()).find(
            (p) => p.name === DISK_VICTIM && p.phase === 'ready' && p.restarts > restartsBefore,
          ),
        );
        backAt = performance.now();
      },
    });

    const exits = failedExits().filter((x) => x.at <= freedAt);
    const restarting = victimEvents().filter((x) => x.event === 'restarting' && x.at <= freedAt);
    const lines = logLines(readFileSync(logFile).subarray(logStart).toString('utf8'));
    const fatal = lines.filter((l) => l.level === 60);
    const recovered = lines.filter((l) => l.msg === 'acceptor log recovered');
    const during = r.progress.filter((p) => p.at >= failedAt && p.at <= backAt);
    console.log(
      `disk full: ${fill.size - fill.used} bytes free at ${Math.round(filledAt - r.faultStart)} ms, the write failed after ${Math.round(failedAt - filledAt)} ms; ${exits.length} failed runs before the disk had room again, restarted after ${restarting.map((x) => `${x.delayMs} ms`).join(', ')}; back ${Math.round(backAt - freedAt)} ms after room was made (${((backAt - r.faultStart) / 1000).toFixed(1)} s after the disk filled); torn bytes cut at recovery: ${recovered.map((l) => l.tornBytes ?? 0).join(', ')}; ${(during.at(-1)?.acknowledged ?? 0) - (during[0]?.acknowledged ?? 0)} acks while it was out; longest gap ${Math.round(r.gaps.duringFaultMs)} ms\n  ${fatal[0]?.msg ?? 'no fatal line'}\n  ${restarting.map((x) => describeLauncherEvent(x)).at(-1) ?? ''}`,
    );

    // Fail-stop: exit code 1 each time, and each time one fatal line naming the segment and ENOSPC.
    expect.soft(exits.map((x) => x.code ?? x.signal)).toEqual(exits.map(() => 1));
    expect.soft(fatal.length, 'fatal lines, one per failed run').toBe(exits.length);
    for (const l of fatal) {
      expect
        .soft(l.msg)
        .toMatch(/^acceptor log write failed, stopping without sending the \d+ messages? held for it: /);
      expect.soft(l.msg).toContain(path.join(dir, '000000000000.seg'));
      expect.soft(l.msg).toContain('ENOSPC');
      expect.soft(l.code).toBe('ENOSPC');
    }
    // The first failure held the replies of a burst under load: they were never sent.
    expect.soft(fatal[0]?.heldMessages ?? 0, 'messages held when the first write failed').toBeGreaterThan(0);
    // The supervisor retries with a wait that doubles each time (to its cap), and says so.
    for (let i = 1; i < restarting.length; i++) {
      const [prev, next] = [restarting[i - 1], restarting[i]];
      expect.soft(next?.delayMs).toBe(Math.min(MAX_RESTART_DELAY_MS, 2 * (prev?.delayMs ?? 0)));
      expect.soft(next?.quickExits).toBe((prev?.quickExits ?? 0) + 1);
    }
    expect.soft(restarting.length).toBe(exits.length);
    expect
      .soft(describeLauncherEvent(restarting.at(-1) ?? { name: '', event: 'restarting', pid: null }))
      .toMatch(
        /restarting in \d+ ms \(\d+(st|nd|rd|th) exit in a row within 10 s of its start: it does not stay up\)$/,
      );
    // Every start recovered its log, the tail a failed write left included; the last one serves.
    // (Whether a failed write leaves a torn tail depends on where the last page ended: when the
    // commit before it filled a page exactly, write(2) stores nothing and there is nothing to cut.
    // Cutting torn tails is tested on the log itself, in @paxos/acceptor-log.)
    expect.soft(recovered.length, 'recoveries since the disk filled').toBe(exits.length);
    // The rest of the group kept serving.
    expect
      .soft((during.at(-1)?.acknowledged ?? 0) - (during[0]?.acknowledged ?? 0), 'acks while it was out')
      .toBeGreaterThan(0);
    const afterBack = r.progress.filter((p) => p.at > backAt);
    expect
      .soft(
        (afterBack.at(-1)?.acknowledged ?? 0) - (afterBack[0]?.acknowledged ?? 0),
        'acks once it was back',
      )
      .toBeGreaterThan(0);
    expect.soft(r.gaps.longestMs, 'longest ms without an ack').toBeLessThanOrEqual(RECOVERY.longestGapMs);
    expect.soft(r.summary.acknowledged, 'commands acknowledged').toBe(r.summary.submitted);
  }, 150_000);

  it('every acknowledgement is chosen in the acceptor logs, and every vote a proxy leader received is in its voter’s log', async () => {
    const e = ready(env);
    await e.cluster.down(); // the proxy leaders write what they still hold of their traces
    const accepted = readAcceptorLogs(e.workDir);
    const chosen = chosenFromVotes(accepted, F);
    let acks = 0;
    for (const file of acksFiles) {
      const list = readAcks(file);
      acks += list.length;
      expect
        .soft(unchosenAcks(list, chosen), `${path.basename(file)}: acknowledged but not chosen`)
        .toEqual([]);
      expect
        .soft(
          new Set(list.map((a) => `${a.client}/${a.requestId}`)).size,
          `${path.basename(file)}: each ack once`,
        )
        .toBe(list.length);
    }
    const votes = tracedVotes(path.join(e.workDir, 'logs'));
    const unlogged = unloggedVotes(votes, accepted, GROUPS);
    console.log(
      `${acks} acknowledgements checked against ${chosen.size} chosen slots; ${votes.length} votes traced at the proxy leaders, ${unlogged.length} not in their voter's log`,
    );
    expect(acks).toBeGreaterThan(0);
    expect(votes.length).toBeGreaterThan(1000);
    expect(unlogged.slice(0, 10)).toEqual([]);
  }, 120_000);
});

function ready<T>(x: T | undefined): T {
  if (x === undefined) throw new Error('the cluster did not start');
  return x;
}

function acksFile(e: { workDir: string }, name: string): string {
  const file = path.join(e.workDir, `acks-${name}.csv`);
  acksFiles.push(file);
  return file;
}

/** The log directory of acceptor `name`, from its environment (as the acceptor computes it). */
function logDirOf(cluster: LocalCluster, name: string): string {
  const env = cluster.spec(name).env;
  return acceptorLogDir(env.DATA_DIR as string, {
    cluster: env.ANNA_KEY_PREFIX || 'paxos',
    groupId: Number(env.ACCEPTOR_GROUP_ID),
    acceptorId: Number(env.ACCEPTOR_ID),
  });
}

interface LogLine {
  level?: number;
  msg?: string;
  code?: string;
  heldMessages?: number;
  tornBytes?: number;
  ms?: number;
}

function logLines(text: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const raw of text.split('\n')) {
    if (!raw.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(raw) as LogLine);
    } catch {
      // a line cut short by a kill
    }
  }
  return lines;
}

function recoveryLines(
  e: { cluster: LocalCluster },
  name: string,
): { created: number; recovered: LogLine[] } {
  const file = e.cluster.instances().find((i) => i.spec.name === name)?.logFile as string;
  const lines = logLines(readFileSync(file, 'utf8'));
  return {
    created: lines.filter((l) => l.msg === 'acceptor log created').length,
    recovered: lines.filter((l) => l.msg === 'acceptor log recovered'),
  };
}

/** Mounts a tmpfs of DISK_BYTES at `dir` (as root); otherwise says why not in `disk.reason`. */
function mountDisk(dir: string): void {
  if (process.getuid?.() !== 0) {
    disk.reason = 'mounting a tmpfs needs root';
    return;
  }
  try {
    mkdirSync(dir, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${DISK_BYTES},mode=0755`, 'paxos-e2e-disk', dir], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    disk.dir = dir;
    disk.reason = null;
  } catch (err) {
    disk.reason = `mount -t tmpfs failed: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
  }
}

/** Leaves `slack` bytes free on the tmpfs at `dir` (it can shrink to what it holds, not below). */
function shrinkDisk(dir: string, slack: number): { used: number; size: number } {
  const s = statfsSync(dir);
  const used = (s.blocks - s.bfree) * s.bsize;
  const size = used + slack;
  execFileSync('mount', ['-o', `remount,size=${size}`, dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  return { used, size };
}

function growDisk(dir: string, bytes: number): void {
  execFileSync('mount', ['-o', `remount,size=${bytes}`, dir], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Unmounts, lazily if something still holds it, so that no test leaves a mount behind. */
function unmount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch {
    execFileSync('umount', ['-l', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  }
  disk.dir = null;
}
