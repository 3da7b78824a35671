import { compareBallots, ZERO_BALLOT } from '../ballot.ts';
import { encodeBatch } from '../codec/codec.ts';
import { type Effect, Effects, type Members, type Role, type RoleEvent } from '../effects.ts';
import type { Address, Ballot, ClientRequest, Command, LeaderInfo } from '../messages.ts';

export interface BatcherOptions {
  readonly address: Address;
  readonly members: Pick<Members, 'proposers'>;
  /** Commands per batch (the seed's BATCH_SIZE). */
  readonly batchSize: number;
  /** A partial batch is sent after this long, so a quiet client is not kept waiting. */
  readonly batchTimeoutMs: number;
  /**
   * Commands held while the leader asks for a pause (its queue is full); beyond this, new commands
   * are dropped and their clients resend. Default 64 batches.
   */
  readonly maxHeldCommands?: number;
  /**
   * The leader it follows is the one with the highest ballot, until that one has sent no
   * LeaderInfo for this long: then another proposer's LeaderInfo is followed even with a lower
   * ballot (a leader that stepped down, or went away, must not keep its batches). Default 1 s.
   */
  readonly leaderTimeoutMs?: number;
}

export const DEFAULT_BATCHER_LEADER_TIMEOUT_MS = 1000;

const TIMER_FLUSH = 'flush';

/** Batcher: groups client commands into batches and sends them to the leader. Keeps nothing durable. */
export class Batcher implements Role {
  readonly address: Address;
  private readonly batchSize: number;
  private readonly batchTimeoutMs: number;
  private readonly maxHeldCommands: number;
  /** The leader asked us to hold batches until then. */
  private holdUntil = 0;
  private members: Pick<Members, 'proposers'>;
  private buffer: Command[] = [];
  private leaderHint: Address | null = null;
  private leaderBallot: Ballot = ZERO_BALLOT;
  private leaderInfoAt = Number.NEGATIVE_INFINITY;
  private readonly leaderTimeoutMs: number;

  constructor(options: BatcherOptions) {
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) {
      throw new Error(`batchSize must be a positive integer, got ${options.batchSize}`);
    }
    this.address = options.address;
    this.members = options.members;
    this.batchSize = options.batchSize;
    this.batchTimeoutMs = options.batchTimeoutMs;
    this.maxHeldCommands = options.maxHeldCommands ?? 64 * options.batchSize;
    this.leaderTimeoutMs = options.leaderTimeoutMs ?? DEFAULT_BATCHER_LEADER_TIMEOUT_MS;
  }

  get leader(): Address | null {
    return this.leaderHint ?? this.members.proposers[0] ?? null;
  }

  get buffered(): number {
    return this.buffer.length;
  }

  start(): Effect[] {
    return [];
  }

  step(now: number, event: RoleEvent): Effect[] {
    const fx = new Effects();
    switch (event.type) {
      case 'message':
        if (event.message.type === 'ClientRequest') this.onClientRequest(fx, now, event.message);
        else if (event.message.type === 'LeaderInfo') this.onLeaderInfo(fx, now, event.message);
        break;
      case 'timer':
        if (event.name === TIMER_FLUSH) this.flush(fx, now);
        break;
      case 'membership':
        this.members = { ...this.members, ...event.members };
        if (this.leaderHint !== null && !this.members.proposers.includes(this.leaderHint))
          this.leaderHint = null;
        break;
    }
    return fx.list;
  }

  private onClientRequest(fx: Effects, now: number, msg: ClientRequest): void {
    if (now < this.holdUntil) {
      // The leader's queue is full: keep what fits, the clients of the rest resend.
      if (this.buffer.length < this.maxHeldCommands) this.buffer.push(msg.command);
      return;
    }
    this.buffer.push(msg.command);
    if (this.buffer.length >= this.batchSize) {
      this.flush(fx, now);
      fx.cancelTimer(TIMER_FLUSH);
    } else if (this.buffer.length === 1) {
      fx.setTimer(TIMER_FLUSH, this.batchTimeoutMs);
    }
  }

  private onLeaderInfo(fx: Effects, now: number, msg: LeaderInfo): void {
    const silent = now - this.leaderInfoAt >= this.leaderTimeoutMs && msg.leader !== this.leaderHint;
    if (compareBallots(msg.ballot, this.leaderBallot) < 0 && !silent) return;
    this.leaderHint = msg.leader;
    this.leaderBallot = msg.ballot;
    this.leaderInfoAt = now;
    if (msg.backoffMs > 0) {
      this.holdUntil = now + msg.backoffMs;
      fx.setTimer(TIMER_FLUSH, msg.backoffMs);
    }
  }

  /** Sends what is buffered, in batches of at most `batchSize` (unless the leader asked to hold). */
  private flush(fx: Effects, now: number): void {
    if (this.buffer.length === 0 || now < this.holdUntil) return;
    const leader = this.leader;
    const commands = this.buffer;
    this.buffer = [];
    // With no proposer known the batch is dropped; clients resend.
    if (leader === null) return;
    for (let i = 0; i < commands.length; i += this.batchSize) {
      const batch = commands.length <= this.batchSize ? commands : commands.slice(i, i + this.batchSize);
      fx.observe('batch_size', batch.length);
      // Encoded here once: every hop up to the unbatcher carries these bytes as they are.
      fx.send(leader, { type: 'ClientBatch', batch: encodeBatch(batch), forwarded: false });
    }
  }
}
