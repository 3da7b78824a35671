import { decodeBatch } from '../codec/codec.ts';
import { type Effect, Effects, type Role, type RoleEvent } from '../effects.ts';
import type { Address, Chosen } from '../messages.ts';

export interface UnbatcherOptions {
  readonly address: Address;
  /** Recently delivered slots remembered, so a duplicated chosen message is not answered twice. */
  readonly dedupeWindow?: number;
}

/**
 * Unbatcher: decodes a chosen batch (the one place after the batcher that looks inside it) and
 * sends one reply per client command. A batch that does not decode is counted and skipped: its
 * slot stays chosen, and the clients, hearing nothing, resend their commands.
 */
export class Unbatcher implements Role {
  readonly address: Address;
  private readonly delivered = new Set<number>();
  private readonly dedupeWindow: number;

  constructor(options: UnbatcherOptions) {
    this.address = options.address;
    this.dedupeWindow = options.dedupeWindow ?? 8192;
  }

  start(): Effect[] {
    return [];
  }

  step(_now: number, event: RoleEvent): Effect[] {
    const fx = new Effects();
    if (event.type === 'message' && event.message.type === 'Chosen') this.onChosen(fx, event.message);
    return fx.list;
  }

  private onChosen(fx: Effects, msg: Chosen): void {
    if (msg.value === null || this.delivered.has(msg.slot)) return;
    this.delivered.add(msg.slot);
    if (this.delivered.size > this.dedupeWindow) {
      this.delivered.delete(this.delivered.values().next().value as number);
    }
    if (msg.value.kind === 'noop') return;
    const decoded = decodeBatch(msg.value.batch);
    if (!decoded.ok) {
      fx.inc('malformed_batches');
      return;
    }
    for (const command of decoded.commands) {
      fx.send(command.clientId, {
        type: 'ClientReply',
        clientId: command.clientId,
        requestId: command.requestId,
        slot: msg.slot,
      });
    }
    fx.inc('commands_chosen', decoded.commands.length);
  }
}
