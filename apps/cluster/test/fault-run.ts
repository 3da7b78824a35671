import path from 'node:path';
import { expect } from 'vitest';
import type { ClientLine } from '../src/cluster.ts';
import {
  type AckGaps,
  ackGaps,
  chosenFromLogs,
  type ProgressSample,
  readAcks,
  sleep,
  type startCluster,
  unchosenAcks,
  waitFor,
} from './helpers.ts';

type ClusterEnv = Awaited<ReturnType<typeof startCluster>>;

/**
 * The load every fault test runs: 22 s outlast warm-up, an 8 s fault and well over ten seconds
 * after it however fast the machine is; then the load generator stops submitting and waits up to
 * 10 s for what is outstanding. A run that stalls still ends by itself.
 */
export const FAULT_LOAD = { durationS: 16, drainS: 10, warmup: 5_000, giveUpMs: 10_000 } as const;

/** How quickly a cluster must get over each fault. */
export const RECOVERY = { resumeWithinMs: 5000, longestGapMs: 5000 } as const;

export interface FaultRunOptions {
  /** Names the fault in the printed line. */
  readonly fault: string;
  /** Seconds of load; then no new command goes out. */
  readonly durationS: number;
  /** After the load, the longest wait for the commands still outstanding. */
  readonly drainS: number;
  /** Commands acknowledged before the fault goes in. */
  readonly warmup: number;
  /** Once the fault is over, stop the load generator after this long without an acknowledgement. */
  readonly giveUpMs: number;
  /** Where the acknowledgements go (default `<workDir>/acks.csv`): one file per run when a cluster runs several. */
  readonly acksFile?: string;
  /**
   * Injects the fault, waits, heals it (also when something throws) and resolves when it is over.
   * One that must look around first (which proposer leads) calls `begins` as the fault goes in.
   */
  readonly inject: (begins: () => void) => Promise<void>;
}

export interface FaultRun {
  readonly summary: Extract<ClientLine, { type: 'summary' }>;
  readonly progress: readonly ProgressSample[];
  readonly gaps: AckGaps;
  readonly faultStart: number;
  readonly faultEnd: number;
  readonly acksFile: string;
}

/**
 * Load from 16 clients with 2 commands outstanding each, one fault once `warmup` commands are
 * acknowledged, and the run to its end. Prints one line of figures before any check can fail.
 */
export async function runWithFault(env: ClusterEnv, o: FaultRunOptions): Promise<FaultRun> {
  const acksFile = o.acksFile ?? path.join(env.workDir, 'acks.csv');
  const progress: ProgressSample[] = [];
  let lastAckAt = 0;
  let finished = false;
  const run = env.cluster
    .runClient({
      index: 0,
      clients: 16,
      window: 2,
      durationS: o.durationS,
      drainS: o.drainS,
      acksFile,
      reportMs: 100,
      onLine: (line) => {
        if (line.type !== 'progress') return;
        const at = performance.now();
        if (line.acknowledged > (progress.at(-1)?.acknowledged ?? 0)) lastAckAt = at;
        progress.push({ at, acknowledged: line.acknowledged });
      },
    })
    .finally(() => {
      finished = true;
    });
  // Settled here too, so that a failure before `await run` below is not also an unhandled rejection.
  run.catch(() => {});

  await waitFor(`${o.warmup} commands acknowledged before the fault`, 30_000, () =>
    (progress.at(-1)?.acknowledged ?? 0) >= o.warmup ? true : undefined,
  );
  let faultStart = performance.now();
  await o.inject(() => {
    faultStart = performance.now();
  });
  const faultEnd = performance.now();
  // A cluster that does not recover would otherwise hold the test until DURATION_S.
  while (!finished) {
    if (performance.now() - Math.max(lastAckAt, faultEnd) > o.giveUpMs) {
      env.cluster.stopClient(0);
      break;
    }
    await sleep(100);
  }
  const summary = await run;

  const gaps = ackGaps(progress, faultStart, faultEnd);
  const ms = (x: number | null) => (x === null ? 'never' : `${Math.round(x)} ms`);
  console.log(
    `${o.fault}: longest gap during the fault ${ms(gaps.duringFaultMs)}; first ack after the fault ${ms(gaps.resumeMs)}; longest gap overall ${ms(gaps.longestMs)}; fault lasted ${ms(faultEnd - faultStart)}; ${summary.acknowledged}/${summary.submitted} acknowledged in ${summary.seconds} s (${summary.reason})`,
  );
  return { summary, progress, gaps, faultStart, faultEnd, acksFile };
}

/**
 * The checks every fault test makes once the cluster is down: each acknowledgement names a slot
 * the acceptors' logs chose it in, each is written once, every command submitted was
 * acknowledged, the acknowledgements came back within `resumeWithinMs` of the fault's end, and no
 * stretch without one (during the fault or after) lasted over `longestGapMs`. Soft, so that one
 * failed run reports every check it failed.
 */
export function expectRecovered(
  env: ClusterEnv,
  r: FaultRun,
  o: { resumeWithinMs: number; longestGapMs: number } = RECOVERY,
): void {
  expect
    .soft((r.progress.at(-1)?.at ?? 0) > r.faultEnd, 'the load outlasted the fault (if not, raise commands)')
    .toBe(true);
  const acks = readAcks(r.acksFile);
  expect.soft(unchosenAcks(acks, chosenFromLogs(env.workDir, 1)), 'acknowledged but not chosen').toEqual([]);
  const distinct = new Set(acks.map((a) => `${a.client}/${a.requestId}`)).size;
  expect
    .soft({ lines: acks.length, distinct }, 'acknowledgements in the file')
    .toEqual({ lines: r.summary.acknowledged, distinct: r.summary.acknowledged });
  expect.soft(r.summary.acknowledged, 'commands acknowledged').toBe(r.summary.submitted);
  expect
    .soft(r.gaps.resumeMs ?? Number.POSITIVE_INFINITY, 'ms from the end of the fault to the first ack')
    .toBeLessThanOrEqual(o.resumeWithinMs);
  // The 8 s faults outlast a failover, so a cluster that waits them out instead of routing around
  // them fails here; so does one that stalls after the fault is over (a later collapse).
  expect
    .soft(r.gaps.longestMs, 'longest ms without an ack, from the first')
    .toBeLessThanOrEqual(o.longestGapMs);
}
