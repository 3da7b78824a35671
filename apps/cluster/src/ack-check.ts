/**
 * Whether what a load generator was told is what the cluster chose: its acknowledgements (the
 * ACKS_FILE CSV) against the values the acceptors' logs hold once the cluster has stopped. Used
 * by the end-to-end tests and `demo:autoscale` to count lost commands.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { nodeStorage, scanLog } from '@paxos/acceptor-log';
import { type AcceptedEntry, type Command, decodeBatch, type Value, valuesEqual } from '@paxos/core';
import { parseTraceLines } from './hop-trace.ts';

export interface Ack {
  client: string;
  requestId: number;
  slot: number;
  /** From submission to acknowledgement, resends included. */
  latencyMs: number;
}

export function readAcks(file: string): Ack[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((line) => {
      const [client = '', requestId = '', slot = '', latencyMs = ''] = line.split(',');
      return { client, requestId: Number(requestId), slot: Number(slot), latencyMs: Number(latencyMs) };
    });
}

/**
 * Every slot an acceptor's log (a directory under DATA_DIR) holds a vote for, with its last vote:
 * the whole history, read-only, not the state a restart recovers (which drops chosen slots).
 */
function votesOf(logDir: string): Map<number, AcceptedEntry> {
  const votes = new Map<number, AcceptedEntry>();
  const storage = nodeStorage(logDir);
  try {
    for (const item of scanLog(storage)) {
      if (item.type !== 'record' || item.record.kind !== 'accept') continue;
      const { slot, ballot, value } = item.record;
      votes.set(slot, { slot, ballot, value });
    }
  } finally {
    storage.close();
  }
  return votes;
}

/** Every acceptor's votes, keyed `<group>/<acceptor>` (see `votesOf`), from the logs under `workDir/data`. */
export type AcceptorVotes = Map<string, Map<number, AcceptedEntry>>;

/** Reads every acceptor log under `workDir/data` once (see `votesOf`). */
export function readAcceptorLogs(workDir: string): AcceptorVotes {
  const dir = path.join(workDir, 'data');
  const accepted: AcceptorVotes = new Map();
  for (const name of existsSync(dir) ? readdirSync(dir) : []) {
    // One directory per acceptor: <cluster key>-g<group>-a<acceptor> (see acceptorLogDir).
    const match = /-g(\d+)-a(\d+)$/.exec(name);
    if (match === null) continue;
    accepted.set(`${match[1]}/${match[2]}`, votesOf(path.join(dir, name)));
  }
  return accepted;
}

/**
 * Ground truth after the cluster stopped: per slot, the values each acceptor's log holds.
 * A command is chosen at `slot` when f+1 acceptors of one group accepted one value holding it in
 * one ballot. Which group a slot belongs to depends on the ballot's configuration (groups change
 * with `cluster reconfigure`); acceptors accept only slots their group owns in the ballot they
 * vote in, so votes are counted per group without knowing the configurations. Retired acceptors'
 * logs stay in the data directory and count.
 */
export function chosenFromLogs(workDir: string, f: number): Map<number, Command[]> {
  return chosenFromVotes(readAcceptorLogs(workDir), f);
}

/** `chosenFromLogs` over logs already read. */
export function chosenFromVotes(accepted: AcceptorVotes, f: number): Map<number, Command[]> {
  const chosen = new Map<number, Command[]>();
  const bySlot = new Map<number, { value: Value; ballot: string; group: string; votes: number }[]>();
  for (const [key, votes] of accepted) {
    const group = key.split('/')[0] as string;
    for (const entry of votes.values()) {
      const ballot = `${entry.ballot.round}.${entry.ballot.proposerId}`;
      const list = bySlot.get(entry.slot) ?? [];
      const same = list.find(
        (x) => x.ballot === ballot && x.group === group && valuesEqual(x.value, entry.value),
      );
      if (same) same.votes++;
      else list.push({ value: entry.value, ballot, group, votes: 1 });
      bySlot.set(entry.slot, list);
    }
  }
  for (const [slot, list] of bySlot) {
    const winner = list.find((x) => x.votes >= f + 1);
    if (winner === undefined) continue;
    if (winner.value.kind === 'noop') {
      chosen.set(slot, []);
      continue;
    }
    // Decoded here, as the unbatcher does: the acceptors' logs hold the batch as the batcher made it.
    const decoded = decodeBatch(winner.value.batch);
    if (!decoded.ok)
      throw new Error(`slot ${slot}: the chosen batch does not decode: ${decoded.error.reason}`);
    chosen.set(slot, decoded.commands);
  }
  return chosen;
}

/** Every acknowledgement names a slot whose chosen value (from the acceptors' logs) holds that command. */
export function unchosenAcks(acks: readonly Ack[], chosen: Map<number, Command[]>): Ack[] {
  return acks.filter(
    (a) => !(chosen.get(a.slot) ?? []).some((c) => c.clientId === a.client && c.requestId === a.requestId),
  );
}

/** A phase-2b vote as a proxy leader's trace lines (TRACE_SAMPLE=1) show it arriving. */
export interface TracedVote {
  readonly slot: number;
  /** The voter's index in the slot's group. */
  readonly acceptor: number;
  /** The proxy leader that received it. */
  readonly instance: string;
}

/** The phase-2b votes received by the proxy leaders whose logs (`<logDir>/proxy-leader-*.log`) hold trace lines. */
export function tracedVotes(logDir: string): TracedVote[] {
  const votes: TracedVote[] = [];
  for (const file of readdirSync(logDir).filter((f) => /^proxy-leader-\d+\.log$/.test(f))) {
    for (const line of parseTraceLines(readFileSync(path.join(logDir, file), 'utf8'))) {
      if (line.hop !== 'recv' || line.type !== 'Phase2b') continue;
      if (line.slot === undefined || line.acceptor === undefined) continue;
      votes.push({ slot: line.slot, acceptor: line.acceptor, instance: line.instance ?? file });
    }
  }
  return votes;
}

/**
 * The votes that left an acceptor for a slot its log holds no accept of: a reply sent before
 * (or without) its record reaching the log. Slot `s` belongs to group `s mod groups`, as in
 * `chosenFromVotes`.
 */
export function unloggedVotes(
  votes: readonly TracedVote[],
  accepted: AcceptorVotes,
  groups: number,
): TracedVote[] {
  return votes.filter((v) => accepted.get(`${v.slot % groups}/${v.acceptor}`)?.has(v.slot) !== true);
}
