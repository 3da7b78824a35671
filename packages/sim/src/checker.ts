import {
  type Ballot,
  bytesEqual,
  type Command,
  type ConfigSpec,
  type Configuration,
  compareBallots,
  configSpecId,
  configSpecOf,
  decodeBatch,
  formatBallot,
  type MatchB,
  type Value,
  valuesEqual,
} from '@paxos/core';

interface BallotVotes {
  readonly value: Value;
  readonly voters: Set<number>;
}

/**
 * The ground truth the simulator checks the cluster against. A value is chosen at slot `s` when
 * f+1 distinct acceptors of `s`'s own group, in the configuration of the ballot they voted in,
 * voted for it in that ballot; votes are recorded as acceptors cast them, so nothing a proxy
 * leader or leader believes is taken on trust. A ballot's configuration is what matchmakers
 * recorded for it (the genesis for a ballot none did, or without matchmakers).
 */
export class SafetyChecker {
  private readonly votes = new Map<number, Map<string, BallotVotes>>();
  private readonly chosenLog = new Map<number, Value>();
  /** The ballot in which each chosen slot was first chosen. */
  private readonly chosenIn = new Map<number, Ballot>();
  /** The commands of each chosen batch, decoded once where they are checked (as an unbatcher would). */
  private readonly chosenCommands = new Map<number, readonly Command[]>();
  private readonly submitted = new Map<string, Uint8Array>();
  /** Every slot below this is chosen. */
  private contiguous = 0;
  private highestChosen = -1;
  /** Ballot → the configuration matchmakers said it has, and who said so first. */
  private readonly configurations = new Map<
    string,
    { readonly specId: number; readonly spec: ConfigSpec | undefined; readonly source: string }
  >();
  private readonly genesis: ConfigSpec;

  /**
   * `strictGroups`: a vote outside the slot's group in its ballot's configuration is a violation
   * (under matchmakers acceptors refuse such messages); otherwise it is only ignored.
   */
  constructor(
    config: Configuration,
    private readonly strictGroups = false,
  ) {
    this.genesis = configSpecOf(config, 0);
  }

  /** The configuration of `ballot`: what matchmakers recorded, else the genesis. */
  specOf(ballot: Ballot): ConfigSpec {
    return this.configurations.get(formatBallot(ballot))?.spec ?? this.genesis;
  }

  /** The ballot slot `slot` was first chosen in (undefined: not chosen). */
  chosenBallot(slot: number): Ballot | undefined {
    return this.chosenIn.get(slot);
  }

  get chosen(): ReadonlyMap<number, Value> {
    return this.chosenLog;
  }

  /** True when the chosen log has no holes: every slot up to the highest chosen one is chosen. */
  get logComplete(): boolean {
    return this.contiguous > this.highestChosen;
  }

  get chosenPrefix(): number {
    return this.contiguous;
  }

  recordSubmitted(command: Command): void {
    this.submitted.set(commandKey(command.clientId, command.requestId), command.payload);
  }

  /** An acceptor voted for `value` at `slot` in `ballot`. Returns a violation, or null. */
  recordVote(groupId: number, acceptorId: number, slot: number, ballot: Ballot, value: Value): string | null {
    const spec = this.specOf(ballot);
    const group = spec.groups[slot % spec.groups.length];
    // Votes cast outside the slot's group never make a value chosen.
    if (group?.groupId !== groupId || !group.acceptorIds.includes(acceptorId)) {
      return this.strictGroups
        ? `acceptor g${groupId}/${acceptorId} voted for slot ${slot} in ballot ${formatBallot(ballot)}, whose configuration gives it to group ${group?.groupId} [${group?.acceptorIds.join(',')}]`
        : null;
    }
    let bySlot = this.votes.get(slot);
    if (bySlot === undefined) {
      bySlot = new Map();
      this.votes.set(slot, bySlot);
    }
    const key = formatBallot(ballot);
    let entry = bySlot.get(key);
    if (entry === undefined) {
      entry = { value, voters: new Set() };
      bySlot.set(key, entry);
    } else if (!valuesEqual(entry.value, value)) {
      return `slot ${slot}: two different values accepted in ballot ${key}`;
    }
    entry.voters.add(acceptorId);
    if (entry.voters.size < spec.f + 1) return null;

    const earlier = this.chosenLog.get(slot);
    const firstIn = this.chosenIn.get(slot);
    if (firstIn === undefined || compareBallots(ballot, firstIn) < 0) this.chosenIn.set(slot, ballot);
    if (earlier === undefined) {
      this.chosenLog.set(slot, value);
      this.highestChosen = Math.max(this.highestChosen, slot);
      while (this.chosenLog.has(this.contiguous)) this.contiguous++;
      return this.checkChosenValue(slot, value);
    }
    if (!valuesEqual(earlier, value)) {
      return `slot ${slot}: two values chosen (${describe(earlier)} and, in ballot ${key}, ${describe(value)})`;
    }
    return null;
  }

  /**
   * A matchmaker sent `reply`; `ownSpecId` is the spec it recorded for `reply.ballot` (undefined
   * if unknown). One configuration per ballot: every MatchB that lists a ballot, and every
   * matchmaker that recorded it, must name the same spec id. Returns a violation, or null.
   */
  recordMatchB(from: string, reply: MatchB, ownSpec: ConfigSpec | undefined): string | null {
    const seen: [Ballot, ConfigSpec, string][] = reply.entries.map((e) => [
      e.ballot,
      e.spec,
      `${from}'s MatchB for ${formatBallot(reply.ballot)}`,
    ]);
    if (ownSpec !== undefined)
      seen.push([reply.ballot, ownSpec, `${from}, which recorded it and answered MatchB`]);
    for (const [ballot, spec, source] of seen) {
      const key = formatBallot(ballot);
      const specId = configSpecId(spec);
      const known = this.configurations.get(key);
      if (known === undefined) this.configurations.set(key, { specId, spec, source });
      else if (known.specId !== specId)
        return `ballot ${key} has two configurations: spec ${known.specId} (${known.source}) and spec ${specId} (${source})`;
    }
    return null;
  }

  /** The spec id matchmakers reported for `ballot`, if any did (no genesis default). */
  configurationOf(ballot: Ballot): number | undefined {
    return this.configurations.get(formatBallot(ballot))?.specId;
  }

  /**
   * A leader proposes `value` at `slot` in `ballot`: a slot chosen in an earlier ballot may only
   * be proposed with its chosen value (true of any correct Paxos; it catches a phase 1 that
   * missed a configuration before a second value gets chosen).
   */
  checkProposal(slot: number, ballot: Ballot, value: Value): string | null {
    const chosenIn = this.chosenIn.get(slot);
    const chosen = this.chosenLog.get(slot);
    if (chosenIn === undefined || chosen === undefined || compareBallots(chosenIn, ballot) >= 0) return null;
    if (valuesEqual(chosen, value)) return null;
    return `slot ${slot} proposed in ${formatBallot(ballot)} with ${describe(value)}, but ${describe(chosen)} is chosen there in ${formatBallot(chosenIn)}`;
  }

  /**
   * A leader asks matchmakers to drop the configurations of ballots below `gcBallot`, whose own
   * configuration starts at slot `k`: every slot below `k` must be chosen, and f+1 acceptors of
   * every group of `gcBallot`'s configuration must have announced (durably) a watermark ≥ k, so
   * that any later phase 1 learns it. `watermarkOf` gives what an acceptor announced.
   */
  checkGarbageCollection(
    gcBallot: Ballot,
    k: number,
    watermarkOf: (groupId: number, acceptorId: number) => number,
  ): string | null {
    if (this.contiguous < k)
      return `garbage collection dropped ballots below ${formatBallot(gcBallot)} while slot ${this.contiguous} (below its start slot ${k}) is not chosen`;
    const spec = this.specOf(gcBallot);
    for (const group of spec.groups) {
      const durable = group.acceptorIds.filter((id) => watermarkOf(group.groupId, id) >= k).length;
      if (durable < spec.f + 1)
        return `garbage collection dropped ballots below ${formatBallot(gcBallot)} while only ${durable} acceptors of group ${group.groupId} announced a watermark ≥ ${k} (slots below it would not be below the durable watermark)`;
    }
    return null;
  }

  /** A proxy leader announced `slot` chosen (with its value, or without when telling the leader). */
  checkAnnouncement(slot: number, value: Value | null): string | null {
    const chosen = this.chosenLog.get(slot);
    if (chosen === undefined) {
      return `slot ${slot} announced chosen but no f+1 acceptors of its group accepted a value`;
    }
    if (value !== null && !valuesEqual(chosen, value)) {
      return `slot ${slot} announced chosen with ${describe(value)} but ${describe(chosen)} is chosen`;
    }
    return null;
  }

  /** A client was told its command is chosen at `slot`. */
  checkAcknowledged(clientId: string, requestId: number, slot: number): string | null {
    const chosen = this.chosenLog.get(slot);
    const found =
      chosen !== undefined &&
      (this.chosenCommands.get(slot) ?? []).some((c) => c.clientId === clientId && c.requestId === requestId);
    return found
      ? null
      : `${clientId} request ${requestId} acknowledged at slot ${slot}, which does not hold it`;
  }

  private checkChosenValue(slot: number, value: Value): string | null {
    if (value.kind === 'noop') return null;
    const decoded = decodeBatch(value.batch);
    if (!decoded.ok) return `slot ${slot}: chosen batch does not decode: ${decoded.error.reason}`;
    this.chosenCommands.set(slot, decoded.commands);
    for (const c of decoded.commands) {
      const payload = this.submitted.get(commandKey(c.clientId, c.requestId));
      if (payload === undefined)
        return `slot ${slot}: chosen command ${c.clientId}#${c.requestId} was never submitted`;
      if (!bytesEqual(payload, c.payload)) {
        return `slot ${slot}: chosen command ${c.clientId}#${c.requestId} has a payload its client never sent`;
      }
    }
    return null;
  }
}

function commandKey(clientId: string, requestId: number): string {
  return `${clientId}#${requestId}`;
}

export function describe(value: Value): string {
  if (value.kind === 'noop') return 'noop';
  const decoded = decodeBatch(value.batch);
  if (!decoded.ok) return `malformed batch of ${value.batch.length} bytes`;
  return describeCommands(decoded.commands);
}

function describeCommands(commands: readonly Command[]): string {
  return `batch[${commands.map((c) => `${c.clientId}#${c.requestId}`).join(',')}]`;
}
