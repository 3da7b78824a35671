import { type Effect, Effects, type Members, type Role, type RoleEvent } from '../effects.ts';
import type { Address, ClientReply, Command } from '../messages.ts';

export interface ClientOptions {
  readonly address: Address;
  readonly members: Pick<Members, 'batchers'>;
  /**
   * A command not acknowledged within this is sent again, to the next batcher. One sent to a
   * batcher that leaves the membership is sent again at once.
   */
  readonly resendTimeoutMs: number;
  /** First request id; a restarted client must start above any id it used before. */
  readonly firstRequestId?: number;
}

interface PendingCommand {
  readonly command: Command;
  readonly submittedAt: number;
  sentAt: number;
  /** The batcher it was last sent to (null: none was known). */
  batcher: Address | null;
}

const TIMER_RESEND = 'resend';

/**
 * Client: sends commands to a batcher, resends on timeout, and acknowledges each command once,
 * with the slot it was chosen in. A resent command may be chosen twice (at-least-once, design
 * rule 10); the first reply wins and later ones are ignored.
 */
export class Client implements Role {
  readonly address: Address;
  private readonly resendTimeoutMs: number;
  private members: Pick<Members, 'batchers'>;
  private nextRequestId: number;
  private batcherCursor = 0;
  /** In send order, so the resend scan stops at the first young command. */
  private readonly pending = new Map<number, PendingCommand>();
  private scanArmed = false;

  constructor(options: ClientOptions) {
    this.address = options.address;
    this.members = options.members;
    this.resendTimeoutMs = options.resendTimeoutMs;
    this.nextRequestId = options.firstRequestId ?? 1;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  pendingRequestIds(): number[] {
    return [...this.pending.keys()];
  }

  start(): Effect[] {
    return [];
  }

  /** Submits a new command; its id is the `requestId` of the `acknowledged` effect that follows. */
  submit(now: number, payload: Uint8Array): { requestId: number; effects: Effect[] } {
    const fx = new Effects();
    const requestId = this.nextRequestId++;
    const entry: PendingCommand = {
      command: { clientId: this.address, requestId, payload },
      submittedAt: now,
      sentAt: now,
      batcher: null,
    };
    this.pending.set(requestId, entry);
    this.send(fx, entry);
    if (!this.scanArmed) {
      this.scanArmed = true;
      fx.setTimer(TIMER_RESEND, this.resendTimeoutMs);
    }
    return { requestId, effects: fx.list };
  }

  step(now: number, event: RoleEvent): Effect[] {
    const fx = new Effects();
    switch (event.type) {
      case 'message':
        if (event.message.type === 'ClientReply') this.onClientReply(fx, now, event.message);
        break;
      case 'timer':
        if (event.name === TIMER_RESEND) this.resendExpired(fx, now);
        break;
      case 'membership':
        this.members = { ...this.members, ...event.members };
        if (event.members.batchers !== undefined) this.resendFromDeparted(fx, now);
        break;
    }
    return fx.list;
  }

  private onClientReply(fx: Effects, now: number, msg: ClientReply): void {
    const entry = this.pending.get(msg.requestId);
    if (entry === undefined || msg.clientId !== this.address) return;
    this.pending.delete(msg.requestId);
    const latencyMs = now - entry.submittedAt;
    fx.observe('client_latency_ms', latencyMs);
    fx.acknowledged(msg.requestId, msg.slot, latencyMs);
  }

  private resendExpired(fx: Effects, now: number): void {
    const expired: PendingCommand[] = [];
    for (const entry of this.pending.values()) {
      if (now - entry.sentAt < this.resendTimeoutMs) break;
      expired.push(entry);
    }
    for (const entry of expired) this.resend(fx, now, entry);
    this.scanArmed = this.pending.size > 0;
    if (this.scanArmed) fx.setTimer(TIMER_RESEND, Math.max(1, Math.floor(this.resendTimeoutMs / 2)));
  }

  /**
   * A batcher that left may have exited before this client heard of it, and what reached it then
   * is lost: waiting for the resend timeout would stall those commands for nothing. Commands that
   * had nowhere to go go now too.
   */
  private resendFromDeparted(fx: Effects, now: number): void {
    if (this.members.batchers.length === 0) return; // kept until a batcher is known
    const live = new Set(this.members.batchers);
    const orphaned: PendingCommand[] = [];
    for (const entry of this.pending.values()) {
      if (entry.batcher === null || !live.has(entry.batcher)) orphaned.push(entry);
    }
    for (const entry of orphaned) this.resend(fx, now, entry);
  }

  /** Sends again and moves the command to the end of the send order. */
  private resend(fx: Effects, now: number, entry: PendingCommand): void {
    this.pending.delete(entry.command.requestId);
    entry.sentAt = now;
    this.pending.set(entry.command.requestId, entry);
    this.send(fx, entry);
    fx.inc('retransmissions');
  }

  private send(fx: Effects, entry: PendingCommand): void {
    const batchers = this.members.batchers;
    // With none known the resend scan tries again once a batcher is.
    entry.batcher =
      batchers.length === 0 ? null : (batchers[this.batcherCursor++ % batchers.length] as Address);
    if (entry.batcher !== null) fx.send(entry.batcher, { type: 'ClientRequest', command: entry.command });
  }
}
