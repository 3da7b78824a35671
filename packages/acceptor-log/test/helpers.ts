import {
  type AcceptedEntry,
  type AcceptorState,
  type Ballot,
  compareBallots,
  maxBallot,
  type Value,
  ZERO_BALLOT,
} from '@paxos/core';
import { type AcceptorLog, type LogIdentity, type LogStorage, scanLog } from '../src/index.ts';

export const identity: LogIdentity = { cluster: 'test', groupId: 1, acceptorId: 2 };
export const config = { id: 7, groups: [0, 1], acceptorIds: [] };
export const b = (round: number, proposerId = 0): Ballot => ({ round, proposerId });

/** A batch value of `size` bytes, its content derived from `seed`. */
export function value(size: number, seed = size): Value {
  const batch = new Uint8Array(size);
  for (let i = 0; i < size; i++) batch[i] = (seed * 31 + i * 7) & 0xff;
  return { kind: 'batch', batch };
}

/**
 * Writes `slots` accepts as a leader would drive one acceptor: slots in order, the watermark
 * `lag` slots behind, a promise (a new ballot) every `promiseEvery` slots, a commit every
 * `burst` records. Returns the ballot it ended at.
 */
export function writeHistory(
  log: AcceptorLog,
  o: {
    from?: number;
    slots: number;
    lag?: number;
    promiseEvery?: number;
    burst?: number;
    valueBytes?: number;
    round?: number;
  },
): number {
  const from = o.from ?? 0;
  const lag = o.lag ?? 50;
  let round = o.round ?? 1;
  let n = 0;
  for (let slot = from; slot < from + o.slots; slot++) {
    if (o.promiseEvery !== undefined && slot % o.promiseEvery === 0) {
      round++;
      log.promised(b(round), config);
      n++;
    }
    log.accepted(
      { slot, ballot: b(round), value: value(o.valueBytes ?? 100, slot) },
      Math.max(0, slot - lag),
      config,
    );
    if (++n % (o.burst ?? 10) === 0) log.commit();
  }
  log.commit();
  return round;
}

/** The state a replay of every record gives: the meaning the bounded recovery must reproduce. */
export function fullReplay(storage: LogStorage): AcceptorState {
  let promised = ZERO_BALLOT;
  let watermark = 0;
  let cfg: AcceptorState['config'] = null;
  let retired = false;
  const accepted = new Map<number, AcceptedEntry>();
  const scan = scanLog(storage);
  for (let r = scan.next(); !r.done; r = scan.next()) {
    if (r.value.type !== 'record') continue;
    const rec = r.value.record;
    if (rec.kind === 'retired') {
      retired = true;
      continue;
    }
    // A watermark record's ballot is its sender's, not a promise.
    if (rec.kind !== 'watermark') promised = maxBallot(promised, rec.ballot);
    if (rec.config !== null) cfg = rec.config;
    if (rec.kind !== 'promise') watermark = Math.max(watermark, rec.watermark);
    if (rec.kind === 'accept')
      accepted.set(rec.slot, { slot: rec.slot, ballot: rec.ballot, value: rec.value });
  }
  return {
    promised,
    watermark,
    config: cfg,
    retired,
    accepted: [...accepted.values()].filter((e) => e.slot >= watermark).sort((x, y) => x.slot - y.slot),
  };
}

export function sameBallot(x: Ballot, y: Ballot): boolean {
  return compareBallots(x, y) === 0;
}
