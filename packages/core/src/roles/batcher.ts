import { compareBallots, ZERO_BALLOT } from '../ballot.ts';
import { type Effect, Effects, type Members, type Role, type RoleEvent } from '../effects.ts';
import type { Address, Ballot, ClientRequest, Command, LeaderInfo } from '../messages.ts';

export interface BatcherOptions {
  readonly address: Address;
  readonly members: Pick<Members, 'proposers'>;
  /** Commands per batch (the seed's BATCH_SIZE). */
  readonly batchSize: number;
  /** A partial batch is sent after this long, so a quiet client is not kept waiting. */
  readonly batchTimeoutMs: number;
}

const TIMER_FLUSH = 'flush';

/** Batcher: groups client commands into batches and sends them to the leader. Keeps nothing durable. */
export class Batcher implements Role {
  readonly address: Address;
  private readonly batchSize: number;
  private readonly batchTimeoutMs: number;
  private members: Pick<Members, 'proposers'>;
  private buffer: Command[] = [];
  private leaderHint: Address | null = null;
  private leaderBallot: Ballot = ZERO_BALLOT;

  constructor(options: BatcherOptions) {
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) {
      throw new Error(`batchSize must be a positive integer, got ${options.batchSize}`);
    }
    this.address = options.address;
    this.members = options.members;
    this.batchSize = options.batchSize;
    this.batchTimeoutMs = options.batchTimeoutMs;
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

  step(_now: number, event: RoleEvent): Effect[] {
    const fx = new Effects();
    switch (event.type) {
      case 'message':
        if (event.message.type === 'ClientRequest') this.onClientRequest(fx, event.message);
        else if (event.message.type === 'LeaderInfo') this.onLeaderInfo(event.message);
        break;
      case 'timer':
        if (event.name === TIMER_FLUSH) this.flush(fx);
        break;
      case 'membership':
        this.members = { ...this.members, ...event.members };
        if (this.leaderHint !== null && !this.members.proposers.includes(this.leaderHint))
          this.leaderHint = null;
        break;
    }
    return fx.list;
  }

  private onClientRequest(fx: Effects, msg: ClientRequest): void {
    this.buffer.push(msg.command);
    if (this.buffer.length >= this.batchSize) {
      this.flush(fx);
      fx.cancelTimer(TIMER_FLUSH);
    } else if (this.buffer.length === 1) {
      fx.setTimer(TIMER_FLUSH, this.batchTimeoutMs);
    }
  }

  private onLeaderInfo(msg: LeaderInfo): void {
    if (compareBallots(msg.ballot, this.leaderBallot) >= 0) {
      this.leaderHint = msg.leader;
      this.leaderBallot = msg.ballot;
    }
  }

  private flush(fx: Effects): void {
    if (this.buffer.length === 0) return;
    const leader = this.leader;
    const commands = this.buffer;
    this.buffer = [];
    // With no proposer known the batch is dropped; clients resend.
    if (leader === null) return;
    fx.observe('batch_size', commands.length);
    fx.send(leader, { type: 'ClientBatch', commands, forwarded: false });
  }
}
