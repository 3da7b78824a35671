/**
 * Every message the roles exchange. The wire form is `proto/paxos.proto`; `codec.ts` maps between
 * the two. Addresses are opaque strings: the simulator uses logical names, the transport uses
 * full `tcp://host:port` endpoints.
 */

export type Address = string;

/** Ballots order lexicographically by `(round, proposerId)`; a proposer id is unique per incarnation. */
export interface Ballot {
  readonly round: number;
  readonly proposerId: number;
}

export interface Command {
  /** Where the reply goes, and half of the command's identity. */
  readonly clientId: Address;
  readonly requestId: number;
  readonly payload: Uint8Array;
}

/**
 * What a slot holds: a noop (fills a hole) or a batch of client commands, encoded once by the
 * batcher (`encodeBatch`) and decoded once by the unbatcher (`decodeBatch`). Every hop between
 * carries the bytes as they are: the leader, proxy leaders and acceptors never look inside.
 */
export type Value = { readonly kind: 'noop' } | { readonly kind: 'batch'; readonly batch: Uint8Array };

export interface AcceptedEntry {
  readonly slot: number;
  readonly ballot: Ballot;
  readonly value: Value;
}

/** client → batcher */
export interface ClientRequest {
  readonly type: 'ClientRequest';
  readonly command: Command;
}

/** unbatcher → client: the command is chosen at `slot`. */
export interface ClientReply {
  readonly type: 'ClientReply';
  readonly clientId: Address;
  readonly requestId: number;
  readonly slot: number;
}

/** batcher → proposer (and a non-leader proposer → the leader it knows, once). */
export interface ClientBatch {
  readonly type: 'ClientBatch';
  /** The commands, encoded (`encodeBatch`): the slot's value as it will be chosen. */
  readonly batch: Uint8Array;
  readonly forwarded: boolean;
}

/**
 * proposer → batcher: who leads, so batches go straight there. A leader whose queue is full sets
 * `backoffMs`: the batcher holds its batches that long instead of sending them to be dropped.
 */
export interface LeaderInfo {
  readonly type: 'LeaderInfo';
  readonly leader: Address;
  readonly ballot: Ballot;
  readonly backoffMs: number;
}

/**
 * Which configuration a phase-1a or phase-2a belongs to: its id (a digest of f and the group
 * order, see `configurationId`) and the group ids in slot order, so an acceptor can refuse a slot
 * its group does not own and a leader whose configuration differs from the one it first served.
 */
export interface ConfigStamp {
  readonly id: number;
  readonly groups: readonly number[];
  /**
   * Under matchmakers (issue 16): the acceptor ids of the group this message is for, in the
   * ballot's configuration; an acceptor not listed refuses it (it was replaced or removed there).
   * Empty: a configuration fixed for the cluster's life, pinned by each acceptor at first use.
   */
  readonly acceptorIds: readonly number[];
}

/**
 * proposer → acceptor: promise not to accept below `ballot`; report accepted slots ≥ `fromSlot`.
 * A leader that already holds the promise sends it again to fetch the next page of phase 1.
 */
export interface Phase1a {
  readonly type: 'Phase1a';
  readonly ballot: Ballot;
  readonly fromSlot: number;
  readonly config: ConfigStamp;
}

/**
 * acceptor → proposer: the promise and one page of accepted slots, in slot order, from
 * `fromSlot`. Pages stay far below the frame limit however long the unchosen tail is: when
 * `more` is set, slots from `nextSlot` on are in later pages (the leader asks with another
 * Phase1a from `nextSlot`); without it the page holds every accepted slot ≥ `fromSlot`.
 */
export interface Phase1b {
  readonly type: 'Phase1b';
  readonly ballot: Ballot;
  readonly groupId: number;
  readonly acceptorId: number;
  /** Every slot below this is chosen (as the acceptor learnt from a leader). */
  readonly watermark: number;
  readonly accepted: readonly AcceptedEntry[];
  /** The Phase1a's `fromSlot`: the page covers slots from here. */
  readonly fromSlot: number;
  /** With `more`: the page covers slots below this, the next page starts here. */
  readonly nextSlot: number;
  readonly more: boolean;
  /** One past the highest slot this acceptor has accepted (0 if none). */
  readonly acceptedEnd: number;
}

/**
 * leader → proxy leader (with the slot's group and its acceptors), and proxy leader → acceptor
 * (acceptors empty). `watermark` piggybacks the leader's chosen watermark (design rule 9).
 */
export interface Phase2a {
  readonly type: 'Phase2a';
  readonly slot: number;
  readonly ballot: Ballot;
  readonly value: Value;
  readonly watermark: number;
  readonly groupId: number;
  readonly acceptors: readonly Address[];
  readonly config: ConfigStamp;
}

/** acceptor → proxy leader: a vote. */
export interface Phase2b {
  readonly type: 'Phase2b';
  readonly slot: number;
  readonly ballot: Ballot;
  readonly groupId: number;
  readonly acceptorId: number;
}

/**
 * A rejection because a higher ballot was promised: acceptor → proposer (phase 1, slot -1),
 * acceptor → proxy leader and proxy leader → leader (phase 2, the slot).
 */
export interface Nack {
  readonly type: 'Nack';
  readonly slot: number;
  readonly ballot: Ballot;
  readonly promised: Ballot;
  /**
   * The acceptor is retired (issue 16): it answers every phase message with this and never
   * promises or votes again, whatever the ballot. False in every frame written before it existed.
   */
  readonly retired: boolean;
}

/** proxy leader → unbatcher (with the value) and → leader (value omitted, slot and ballot only). */
export interface Chosen {
  readonly type: 'Chosen';
  readonly slot: number;
  readonly ballot: Ballot;
  readonly value: Value | null;
}

/**
 * leader → other proposers. `progress` counts the slots the leader learnt chosen in its ballot and
 * `pending` the slots it waits for: heartbeats that keep arriving while `pending` stays above zero
 * and `progress` stands still tell followers the leader is stuck (it may send but not hear).
 */
export interface Heartbeat {
  readonly type: 'Heartbeat';
  readonly ballot: Ballot;
  readonly watermark: number;
  readonly progress: number;
  readonly pending: number;
}

/** One acceptor group of a `ConfigSpec`: its id and the ids of its 2f+1 acceptors. */
export interface ConfigSpecGroup {
  readonly groupId: number;
  /**
   * An acceptor is `(groupId, acceptorId)`, and ids within a group are never reused: replacing
   * acceptor 2 of group 1 adds a new id (say 3) to the group and drops 2.
   */
  readonly acceptorIds: readonly number[];
}

/**
 * A configuration as matchmakers record it (issue 16): f, the operator's version, and the acceptor
 * groups in slot order (slot s belongs to `groups[s mod G]`). No addresses: the directory resolves
 * `(groupId, acceptorId)` to one. `configSpecId` digests it (version excluded).
 */
export interface ConfigSpec {
  readonly f: number;
  /** Monotone counter of operator targets; not part of the id. */
  readonly version: number;
  readonly groups: readonly ConfigSpecGroup[];
}

/** What a matchmaker recorded for one ballot. */
export interface ConfigEntry {
  readonly ballot: Ballot;
  readonly spec: ConfigSpec;
  /** The first slot the ballot proposes in its own configuration; -1 until a `GarbageA` says. */
  readonly startSlot: number;
}

/**
 * proposer → matchmaker: record `spec` as the configuration of `ballot` and tell me the earlier
 * ones. `epoch` is the matchmaker set's epoch (always 0 until matchmakers are reconfigured).
 */
export interface MatchA {
  readonly type: 'MatchA';
  readonly epoch: number;
  readonly ballot: Ballot;
  readonly spec: ConfigSpec;
}

/** matchmaker → proposer: `ballot` is recorded; `entries` are those with ballots in [gcBallot, ballot). */
export interface MatchB {
  readonly type: 'MatchB';
  readonly epoch: number;
  readonly ballot: Ballot;
  readonly matchmakerId: number;
  readonly gcBallot: Ballot;
  readonly entries: readonly ConfigEntry[];
}

/** matchmaker → proposer: `ballot` cannot be matched; `higher` is a ballot at or above which to retry. */
export interface MatchNack {
  readonly type: 'MatchNack';
  readonly epoch: number;
  readonly ballot: Ballot;
  readonly higher: Ballot;
  /**
   * Set when the refusal is for the configuration's version: the matchmaker holds this newer
   * configuration, and configuration versions never go back (null otherwise).
   */
  readonly newer: ConfigSpec | null;
}

/**
 * proposer → matchmaker: configurations of ballots below `gcBallot` are no longer needed;
 * `startSlot` is where `gcBallot`'s own configuration starts.
 */
export interface GarbageA {
  readonly type: 'GarbageA';
  readonly epoch: number;
  readonly gcBallot: Ballot;
  readonly startSlot: number;
  /**
   * `gcBallot`'s configuration. A matchmaker that never recorded it keeps it as its entry, so
   * every matchmaker's oldest entry is its gcBallot's and its version bounds what it accepts.
   */
  readonly spec: ConfigSpec;
}

/** matchmaker → proposer: its own gcBallot (≥ the one asked for once the request is applied). */
export interface GarbageB {
  readonly type: 'GarbageB';
  readonly epoch: number;
  readonly matchmakerId: number;
  readonly gcBallot: Ballot;
}

/**
 * proposer → acceptor: every slot below `watermark` is chosen (issue 16). The durable form of the
 * watermark a Phase2a piggybacks: the acceptor logs it and answers `WatermarkB` once it is on
 * disk. Stamped like a Phase1a; `ballot` is the sender's, for the record (the watermark is a fact
 * about chosen slots, true in every ballot).
 */
export interface WatermarkA {
  readonly type: 'WatermarkA';
  readonly ballot: Ballot;
  readonly watermark: number;
  readonly config: ConfigStamp;
}

/** acceptor → proposer: its watermark, sent only once the record saying so is durable. */
export interface WatermarkB {
  readonly type: 'WatermarkB';
  readonly groupId: number;
  readonly acceptorId: number;
  readonly watermark: number;
}

/**
 * proposer → acceptor `(groupId, acceptorId)`: no live configuration lists you any more; never
 * promise or vote again (issue 16). Sent after garbage collection took effect.
 */
export interface Retire {
  readonly type: 'Retire';
  readonly ballot: Ballot;
  readonly groupId: number;
  readonly acceptorId: number;
}

/** acceptor → proposer: the acceptor is retired, and its retired record is durable. */
export interface RetireB {
  readonly type: 'RetireB';
  readonly groupId: number;
  readonly acceptorId: number;
}

// ---- matchmaker reconfiguration (issue 16) --------------------------------------------------
// The proposer replacing the matchmaker set stops epoch e's matchmakers (StopA), bootstraps the
// next set with their state (BootstrapA), and has epoch e's matchmakers choose that set by
// single-decree Paxos: StopA is its phase 1 (a promise), EpochAccept its phase 2.

/** A matchmaker set: its epoch and its 2f+1 members' addresses. */
export interface MatchmakerEpoch {
  readonly epoch: number;
  readonly addresses: readonly Address[];
}

/** What a matchmaker holds for its epoch, handed from a stopped set to the next one. */
export interface MatchmakerSnapshot {
  readonly gcBallot: Ballot;
  readonly maxBallot: Ballot;
  readonly entries: readonly ConfigEntry[];
}

/** A vote for the set after an epoch, cast in `ballot`. */
export interface EpochVote {
  readonly ballot: Ballot;
  readonly next: MatchmakerEpoch;
}

/**
 * proposer → matchmaker of `epoch`: stop answering MatchA and GarbageA, and promise `ballot` in
 * the choice of the next set. `current` is `epoch`'s set, which the sender knows chosen.
 */
export interface StopA {
  readonly type: 'StopA';
  readonly epoch: number;
  readonly ballot: Ballot;
  readonly current: MatchmakerEpoch;
}

/** matchmaker → proposer: stopped (durably); its state, and its vote for the next set if any. */
export interface StopB {
  readonly type: 'StopB';
  readonly epoch: number;
  readonly ballot: Ballot;
  readonly matchmakerId: number;
  readonly state: MatchmakerSnapshot;
  readonly vote: EpochVote | null;
}

/** proposer → matchmaker of `next`: serve `next.epoch`, starting from `state`. */
export interface BootstrapA {
  readonly type: 'BootstrapA';
  readonly next: MatchmakerEpoch;
  readonly state: MatchmakerSnapshot;
}

/** matchmaker → proposer: serving `epoch`, its state durable. */
export interface BootstrapB {
  readonly type: 'BootstrapB';
  readonly epoch: number;
  readonly matchmakerId: number;
}

/** proposer → matchmaker of `epoch`: vote for `next` as the following set, in `ballot`. */
export interface EpochAccept {
  readonly type: 'EpochAccept';
  readonly epoch: number;
  readonly ballot: Ballot;
  readonly next: MatchmakerEpoch;
}

/** matchmaker → proposer: voted (durably). */
export interface EpochAccepted {
  readonly type: 'EpochAccepted';
  readonly epoch: number;
  readonly ballot: Ballot;
  readonly matchmakerId: number;
}

/** matchmaker → proposer: `ballot` is below the one promised, `higher`. */
export interface EpochNack {
  readonly type: 'EpochNack';
  readonly epoch: number;
  readonly ballot: Ballot;
  readonly higher: Ballot;
}

/** proposer → matchmakers: `next` is chosen as the set after epoch `next.epoch - 1`. */
export interface EpochChosen {
  readonly type: 'EpochChosen';
  readonly next: MatchmakerEpoch;
}

/**
 * matchmaker → proposer, for a MatchA or GarbageA of a stopped epoch: `next` is a later set known
 * chosen, or null when this matchmaker knows none yet (the proposer then finishes the change).
 */
export interface Stopped {
  readonly type: 'Stopped';
  readonly epoch: number;
  readonly next: MatchmakerEpoch | null;
}

export type Message =
  | ClientRequest
  | ClientReply
  | ClientBatch
  | LeaderInfo
  | Phase1a
  | Phase1b
  | Phase2a
  | Phase2b
  | Nack
  | Chosen
  | Heartbeat
  | MatchA
  | MatchB
  | MatchNack
  | GarbageA
  | GarbageB
  | WatermarkA
  | WatermarkB
  | Retire
  | RetireB
  | StopA
  | StopB
  | BootstrapA
  | BootstrapB
  | EpochAccept
  | EpochAccepted
  | EpochNack
  | EpochChosen
  | Stopped;

export type MessageType = Message['type'];

/** One frame on the wire: the sender's reply address and one message. */
export interface Envelope {
  readonly from: Address;
  readonly message: Message;
}

export const NOOP: Value = Object.freeze({ kind: 'noop' });

/** The stamp of no configuration: what a frame or log record without one decodes to. */
export const UNSTAMPED: ConfigStamp = Object.freeze({
  id: 0,
  groups: Object.freeze([]),
  acceptorIds: Object.freeze([]),
});
