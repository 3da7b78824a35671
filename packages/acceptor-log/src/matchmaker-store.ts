/**
 * A matchmaker's durable state: one small file, `matchmaker`, replaced whole (`writeAtomic`) on
 * every change, in the acceptor log's file header format:
 *
 *   [8-byte magic "PXMMKSTA"][u32 version][u32 body length][u32 crc32c(body)][body: JSON]
 *
 * The body is `{ cluster, matchmakerId, epoch, gcBallot, maxBallot, entries, stopped, decisions,
 * chosen }` (version 2; a version-1 file, written before matchmaker reconfiguration, has only
 * the first six and reads as not stopped, no decisions, nothing known chosen). JSON rather than
 * protobuf because the header reader already parses, checks and names JSON bodies (so damage and
 * identity are reported exactly as for an acceptor's state file), the state is a few hundred
 * bytes written once per election, reconfiguration or garbage collection (never per command),
 * and it stays readable with `cat`. No segments: a whole-state snapshot is simpler than a log
 * plus checkpoint and recovers by reading one small file.
 */
import {
  type Ballot,
  type ConfigEntry,
  compareBallots,
  type EpochDecision,
  type MatchmakerEpoch,
  type MatchmakerState,
  validateConfigSpec,
} from '@paxos/core';
import { LogExistsError, LogIdentityError, LogMissingError } from './errors.ts';
import { encodeFileHeader, isBallot, isCount } from './format.ts';
import type { CreateMode } from './log.ts';
import { LogFileReader } from './read.ts';
import { type LogStorage, TEMP_SUFFIX } from './storage.ts';

export const MATCHMAKER_FILE = 'matchmaker';
export const MATCHMAKER_MAGIC = 'PXMMKSTA';
/** The state file's format version (the acceptor log's versions are its own). */
export const MATCHMAKER_FORMAT_VERSION = 2;

/** Which matchmaker a state file belongs to; written in it and checked on open. */
export interface MatchmakerIdentity {
  /** The cluster's key (as `LogIdentity.cluster`). */
  readonly cluster: string;
  readonly matchmakerId: number;
}

export function formatMatchmakerIdentity(id: MatchmakerIdentity): string {
  return `cluster "${id.cluster}" matchmaker ${id.matchmakerId}`;
}

export interface MatchmakerStoreOptions {
  /** Whose state this is: a state of another identity is refused (`LogIdentityError`). */
  readonly identity: MatchmakerIdentity;
  /**
   * `if-missing` (default): no state yet is fine (a new matchmaker). `never`: the state must be
   * there, since this matchmaker has run before (`LogMissingError`). `always`: this start must
   * be a new matchmaker; a state already there is refused (`LogExistsError`), never written over.
   */
  readonly create?: CreateMode;
}

export interface OpenedMatchmakerStore {
  readonly store: MatchmakerStore;
  /** The recovered state, or null where there was none: `Matchmaker`'s `recovered`. */
  readonly state: MatchmakerState | null;
}

/**
 * Opens and replaces a matchmaker's state file over any `LogStorage` (files on disk, or memory
 * that loses what was never synced).
 */
export class MatchmakerStore {
  private constructor(
    private readonly storage: LogStorage,
    private readonly identity: MatchmakerIdentity,
    private last: MatchmakerState | null,
  ) {}

  /**
   * Reads the state in `storage` (null if it has none and `create` allows that). Throws
   * `LogCorruptError` naming the file and byte offset for damage (a torn replace cannot happen:
   * `writeAtomic`), `LogIdentityError` for another matchmaker's state or a directory holding
   * other files, `LogMissingError`/`LogExistsError` where `create` forbids what was found.
   * Nothing is written before these checks.
   */
  static open(storage: LogStorage, options: MatchmakerStoreOptions): OpenedMatchmakerStore {
    const { identity } = options;
    const create = options.create ?? 'if-missing';
    let has = false;
    const foreign: string[] = [];
    for (const name of storage.list()) {
      if (name === MATCHMAKER_FILE) has = true;
      else if (!name.endsWith(TEMP_SUFFIX)) foreign.push(name);
    }
    if (foreign.length > 0)
      throw new LogIdentityError(
        `${storage.location} is not a matchmaker's directory: it holds ${foreign
          .sort()
          .slice(0, 3)
          .map((f) => JSON.stringify(f))
          .join(
            ', ',
          )}${foreign.length > 3 ? ` and ${foreign.length - 3} more` : ''} (expected only "${MATCHMAKER_FILE}")`,
      );
    if (!has) {
      if (create === 'never') throw new LogMissingError(storage.location, 'matchmaker');
      storage.create();
      return { store: new MatchmakerStore(storage, identity, null), state: null };
    }
    if (create === 'always') throw new LogExistsError(storage.location, 0, true, 'matchmaker');
    const reader = new LogFileReader(storage, MATCHMAKER_FILE, { bytesRead: 0 });
    const { body, dataStart } = reader.header(MATCHMAKER_MAGIC, checkMatchmakerBody, [
      1,
      MATCHMAKER_FORMAT_VERSION,
    ]);
    const size = storage.size(MATCHMAKER_FILE);
    if (size !== dataStart)
      throw reader.corrupt(dataStart, `${size - dataStart} bytes after the state`, 'the file to end with it');
    const found = body as unknown as MatchmakerIdentity &
      Omit<MatchmakerState, 'stopped' | 'decisions' | 'chosen'> &
      Partial<Pick<MatchmakerState, 'stopped' | 'decisions' | 'chosen'>>;
    if (found.cluster !== identity.cluster || found.matchmakerId !== identity.matchmakerId)
      throw new LogIdentityError(
        `${reader.path} belongs to ${formatMatchmakerIdentity(found)}, not to this matchmaker (${formatMatchmakerIdentity(identity)}): refusing to start on another matchmaker's state`,
      );
    const state: MatchmakerState = {
      epoch: found.epoch,
      gcBallot: ballot(found.gcBallot),
      maxBallot: ballot(found.maxBallot),
      entries: found.entries.map((e) => ({
        ballot: ballot(e.ballot),
        spec: {
          f: e.spec.f,
          version: e.spec.version,
          groups: e.spec.groups.map((g) => ({ groupId: g.groupId, acceptorIds: [...g.acceptorIds] })),
        },
        startSlot: e.startSlot,
      })),
      stopped: found.stopped === true,
      decisions: (found.decisions ?? []).map((d) => ({
        epoch: d.epoch,
        promised: ballot(d.promised),
        vote: d.vote === null ? null : { ballot: ballot(d.vote.ballot), next: matchmakerEpoch(d.vote.next) },
      })),
      chosen: found.chosen == null ? null : matchmakerEpoch(found.chosen),
    };
    return { store: new MatchmakerStore(storage, identity, state), state };
  }

  /** The state last saved or recovered (null: none yet). */
  get saved(): MatchmakerState | null {
    return this.last;
  }

  /** Replaces the state file with `state`, durably (temporary file, sync, rename, directory sync). */
  save(state: MatchmakerState): void {
    const { cluster, matchmakerId } = this.identity;
    const { epoch, gcBallot, maxBallot, entries, stopped, decisions, chosen } = state;
    const body = { cluster, matchmakerId, epoch, gcBallot, maxBallot, entries, stopped, decisions, chosen };
    this.storage.writeAtomic(
      MATCHMAKER_FILE,
      encodeFileHeader(MATCHMAKER_MAGIC, body, MATCHMAKER_FORMAT_VERSION),
    );
    this.last = state;
  }
}

const ballot = (b: Ballot): Ballot => ({ round: b.round, proposerId: b.proposerId });
const matchmakerEpoch = (e: MatchmakerEpoch): MatchmakerEpoch => ({
  epoch: e.epoch,
  addresses: [...e.addresses],
});

const isMatchmakerEpoch = (v: unknown): v is MatchmakerEpoch =>
  typeof v === 'object' &&
  v !== null &&
  isCount((v as MatchmakerEpoch).epoch) &&
  Array.isArray((v as MatchmakerEpoch).addresses) &&
  (v as MatchmakerEpoch).addresses.every((a) => typeof a === 'string' && a.length > 0);

const isDecision = (v: unknown): v is EpochDecision => {
  if (typeof v !== 'object' || v === null) return false;
  const d = v as EpochDecision;
  return (
    isCount(d.epoch) &&
    isBallot(d.promised) &&
    (d.vote === null ||
      (typeof d.vote === 'object' && isBallot(d.vote.ballot) && isMatchmakerEpoch(d.vote.next)))
  );
};

/** A body that passed its CRC but not this was written by something else: its values are not trusted. */
function checkMatchmakerBody(b: Record<string, unknown>): string | null {
  if (!(typeof b.cluster === 'string' && isCount(b.matchmakerId)))
    return 'cluster (a string) and matchmakerId (an integer >= 0)';
  if (!isCount(b.epoch)) return 'epoch (an integer >= 0)';
  if (!isBallot(b.gcBallot) || !isBallot(b.maxBallot))
    return 'gcBallot and maxBallot (ballots { round, proposerId })';
  const { gcBallot, maxBallot } = b;
  const entries = b.entries;
  const expected =
    'entries (a list of { ballot, spec, startSlot } in ascending ballot order, each within [gcBallot, maxBallot], with a valid spec and a start slot >= -1)';
  if (!Array.isArray(entries)) return expected;
  let previous: Ballot | null = null;
  for (const e of entries as ConfigEntry[]) {
    if (typeof e !== 'object' || e === null || !isBallot(e.ballot)) return expected;
    if (!(Number.isSafeInteger(e.startSlot) && e.startSlot >= -1)) return expected;
    if (compareBallots(e.ballot, gcBallot) < 0 || compareBallots(e.ballot, maxBallot) > 0) return expected;
    if (previous !== null && compareBallots(previous, e.ballot) >= 0) return expected;
    previous = e.ballot;
    try {
      const s = e.spec;
      if (!s.groups.every((g) => typeof g === 'object' && g !== null && Array.isArray(g.acceptorIds)))
        return expected;
      validateConfigSpec(s);
    } catch {
      return expected;
    }
  }
  // Version 2's fields (absent in version 1).
  if (b.stopped !== undefined && typeof b.stopped !== 'boolean') return 'stopped (a boolean)';
  if (b.decisions !== undefined && !(Array.isArray(b.decisions) && b.decisions.every(isDecision)))
    return 'decisions (a list of { epoch, promised, vote: { ballot, next: { epoch, addresses } } or null })';
  if (b.chosen !== undefined && b.chosen !== null && !isMatchmakerEpoch(b.chosen))
    return 'chosen (null or { epoch, addresses: non-empty strings })';
  return null;
}
