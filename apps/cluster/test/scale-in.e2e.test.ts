import { readFileSync } from 'node:fs';
import path from 'node:path';
import { AnnaClient, type MemberKind, Membership } from '@paxos/anna-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectRecovered, runWithFault } from './fault-run.ts';
import { ackGaps, type ProgressSample, readAcks, sleep, startCluster, waitFor } from './helpers.ts';

let env: Awaited<ReturnType<typeof startCluster>>;
beforeAll(async () => {
  env = await startCluster(26700);
});
afterAll(async () => {
  await env?.stop();
});

/** One instance of each stateless role, removed in turn under one load run. */
const SCALE_INS: readonly { name: string; kind: MemberKind }[] = [
  { name: 'batcher-1', kind: 'Batchers' },
  { name: 'proxy-leader-1', kind: 'ProxyLeaders' },
  { name: 'unbatcher-1', kind: 'Unbatchers' },
];
/**
 * How late peers learn of each leave: the directory is paused this long right after the process
 * deregistered, as when the directory or a peer's poll is slow. A process that leaves after a fixed
 * window (one poll) goes while peers still send to it; one that drains until they stop does not.
 */
const DIRECTORY_LATE_MS = 1200;
/**
 * After each instance is gone, the window in which a stall still counts against it: a command
 * lost to it would come back only with the client's 1 s resend, so the window covers that.
 */
const AFTERMATH_MS = 2000;
/**
 * Longest stall allowed around a scale-in. A command lost to a departed batcher or unbatcher comes
 * back only with its client's resend (1 s), which the slowest-command check catches; a slot in the
 * hands of a departed proxy leader is re-proposed as soon as the leader sees it leave. So this
 * bound is for stalls without a loss: quiet runs show about 100 ms (progress lines come every
 * 100 ms), two `yes` burners 300 ms, and a CI run with other work beside it 0.7 s.
 */
const MAX_GAP_MS = 900;
/** The load generator's resend timeout (CLIENT_RESEND_MS): no command may have needed it. */
const CLIENT_RESEND_MS = 1000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The longest latency of a command acknowledged between `from` and `to`. The acks file lists
 * acknowledgements in order, so the i-th is dated by the first progress line counting over i.
 */
function slowestAck(
  progress: readonly ProgressSample[],
  latencies: readonly number[],
  from: number,
  to: number,
) {
  let slowest = 0;
  let sample = 0;
  latencies.forEach((latency, i) => {
    while (sample < progress.length && (progress[sample]?.acknowledged ?? 0) <= i) sample++;
    const at = progress[sample]?.at ?? Number.POSITIVE_INFINITY;
    if (at >= from && at <= to) slowest = Math.max(slowest, latency);
  });
  return Math.round(slowest);
}

describe('scale-in under load', () => {
  it('a batcher, a proxy leader and an unbatcher each leave gracefully: nothing lost, no stall', async () => {
    const windows: { name: string; pid: number; from: number; to: number }[] = [];
    const directory = await AnnaClient.connect({ routing: env.cluster.annaRouting });
    const membership = new Membership(directory, { keyPrefix: env.cluster.topology.keyPrefix });
    const removed = async (kind: MemberKind) => (await membership.read(kind)).removed?.length ?? 0;
    let r: Awaited<ReturnType<typeof runWithFault>>;
    try {
      r = await runWithFault(env, {
        fault: `scale-in of ${SCALE_INS.map((s) => s.name).join(', ')}`,
        durationS: 20,
        drainS: 10,
        warmup: 5_000,
        giveUpMs: 10_000,
        inject: async () => {
          for (const { name, kind } of SCALE_INS) {
            const pid = env.cluster.instances().find((i) => i.name === name)?.pid ?? 0;
            const before = await removed(kind);
            const from = performance.now();
            const stopped = env.cluster.launcher.stop(name);
            await waitFor(
              `${name} to deregister`,
              5000,
              async () => ((await removed(kind)) > before ? true : undefined),
              10,
            );
            env.cluster.kill('directory', 'SIGSTOP');
            try {
              await sleep(DIRECTORY_LATE_MS);
            } finally {
              env.cluster.kill('directory', 'SIGCONT');
            }
            await stopped;
            windows.push({ name, pid, from, to: performance.now() });
            await sleep(AFTERMATH_MS);
          }
        },
      });
    } finally {
      await directory.close();
    }

    const latencies = readAcks(r.acksFile).map((a) => a.latencyMs);
    const results = windows.map((w) => ({
      ...w,
      gapMs: Math.round(ackGaps(r.progress, w.from, w.to + AFTERMATH_MS).duringFaultMs),
      slowestMs: slowestAck(r.progress, latencies, w.from, w.to + AFTERMATH_MS),
    }));
    for (const x of results) {
      // The drain may end at its timeout on a starved machine; the checks below say whether that cost anything.
      const timedOut = readFileSync(path.join(env.workDir, 'logs', `${x.name}.log`), 'utf8').includes(
        'drain timed out',
      );
      console.log(
        `scale-in ${x.name}: longest gap without an ack ${x.gapMs} ms; slowest command ${x.slowestMs} ms; stop took ${Math.round(x.to - x.from)} ms${timedOut ? ' (drain timed out)' : ''}`,
      );
    }

    await env.cluster.down();
    expectRecovered(env, r, { resumeWithinMs: MAX_GAP_MS, longestGapMs: 5000 });
    expect(results.map((x) => x.name)).toEqual(SCALE_INS.map((s) => s.name));
    for (const x of results) {
      expect.soft(x.pid, `${x.name} had a pid`).toBeGreaterThan(0);
      expect.soft(alive(x.pid), `${x.name} is gone`).toBe(false);
      expect
        .soft(
          env.exits.filter((e) => e.name === x.name),
          `${x.name} exited once, cleanly`,
        )
        .toEqual([{ name: x.name, code: 0, signal: null }]);
      expect
        .soft(x.gapMs, `ms without an ack around the scale-in of ${x.name}`)
        .toBeLessThanOrEqual(MAX_GAP_MS);
      expect
        .soft(x.slowestMs, `slowest command around the scale-in of ${x.name}: none waited for a resend`)
        .toBeLessThan(CLIENT_RESEND_MS);
    }
  }, 100_000);
});
