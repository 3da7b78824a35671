import { describe, expect, it } from 'vitest';
import { Batcher, Client, type Command, decodeBatch, encodeBatch, Unbatcher } from '../src/index.ts';
import { deliver, fire, sends, sendsOf, timers } from './helpers.ts';

const cmd = (requestId: number, clientId = 'c0'): Command => ({
  clientId,
  requestId,
  payload: new Uint8Array([requestId]),
});
const ballot = { round: 1, proposerId: 1 };

/** The commands of an encoded batch (which must decode). */
function commandsIn(batch: Uint8Array): Command[] {
  const decoded = decodeBatch(batch);
  if (!decoded.ok) throw decoded.error;
  return decoded.commands;
}

describe('Batcher', () => {
  it('sends a full batch at once and a partial one when the flush timer fires', () => {
    const b = new Batcher({
      address: 'b',
      members: { proposers: ['p1', 'p2'] },
      batchSize: 2,
      batchTimeoutMs: 5,
    });
    expect(timers(deliver(b, 'c0', { type: 'ClientRequest', command: cmd(1) }))).toEqual(['flush']);
    const full = sendsOf(deliver(b, 'c0', { type: 'ClientRequest', command: cmd(2) }), 'ClientBatch');
    expect(full).toEqual([
      { to: 'p1', message: { type: 'ClientBatch', batch: encodeBatch([cmd(1), cmd(2)]), forwarded: false } },
    ]);
    deliver(b, 'c0', { type: 'ClientRequest', command: cmd(3) });
    deliver(b, 'p2', { type: 'LeaderInfo', leader: 'p2', ballot, backoffMs: 0 });
    expect(sendsOf(fire(b, 'flush'), 'ClientBatch').map((s) => [s.to, commandsIn(s.message.batch)])).toEqual([
      ['p2', [cmd(3)]],
    ]);
    expect(sends(fire(b, 'flush'))).toEqual([]);
  });

  it('holds its batches while the leader asks it to back off, then sends them in batches of batchSize', () => {
    const b = new Batcher({
      address: 'b',
      members: { proposers: ['p1'] },
      batchSize: 2,
      batchTimeoutMs: 0,
      maxHeldCommands: 5,
    });
    const held = deliver(b, 'p1', { type: 'LeaderInfo', leader: 'p1', ballot, backoffMs: 30 }, 100);
    expect(held).toContainEqual({ kind: 'setTimer', name: 'flush', delayMs: 30 });
    for (let i = 1; i <= 7; i++) {
      expect(sends(deliver(b, 'c0', { type: 'ClientRequest', command: cmd(i) }, 110))).toEqual([]);
    }
    expect(sends(fire(b, 'flush', 120))).toEqual([]);
    expect(b.buffered).toBe(5); // the rest dropped: their clients resend
    const out = sendsOf(fire(b, 'flush', 130), 'ClientBatch').map((s) =>
      commandsIn(s.message.batch).map((c) => c.requestId),
    );
    expect(out).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('follows the leader with the highest ballot and rejects a bad batch size', () => {
    const b = new Batcher({
      address: 'b',
      members: { proposers: ['p1', 'p2'] },
      batchSize: 1,
      batchTimeoutMs: 5,
    });
    deliver(b, 'p2', { type: 'LeaderInfo', leader: 'p2', ballot: { round: 3, proposerId: 2 }, backoffMs: 0 });
    deliver(b, 'p1', { type: 'LeaderInfo', leader: 'p1', ballot: { round: 2, proposerId: 1 }, backoffMs: 0 });
    expect(b.leader).toBe('p2');
    expect(
      () => new Batcher({ address: 'b', members: { proposers: [] }, batchSize: 0, batchTimeoutMs: 1 }),
    ).toThrow(/batchSize/);
  });

  it('follows another proposer with a lower ballot once the one it follows sent nothing for leaderTimeoutMs', () => {
    const b = new Batcher({
      address: 'b',
      members: { proposers: ['p1', 'p2'] },
      batchSize: 1,
      batchTimeoutMs: 5,
      leaderTimeoutMs: 100,
    });
    const info = (leader: string, round: number) =>
      ({ type: 'LeaderInfo', leader, ballot: { round, proposerId: 1 }, backoffMs: 0 }) as const;
    deliver(b, 'p2', info('p2', 4), 0);
    deliver(b, 'p1', info('p1', 3), 50); // p2 spoke 50 ms ago: still followed
    expect(b.leader).toBe('p2');
    deliver(b, 'p2', info('p2', 4), 90);
    deliver(b, 'p1', info('p1', 3), 150); // 60 ms since p2: still p2
    expect(b.leader).toBe('p2');
    // p2 stepped down (or went deaf for good) and fell silent: p1 still believes it leads.
    deliver(b, 'p1', info('p1', 3), 200);
    expect(b.leader).toBe('p1');
    const sent = sendsOf(
      deliver(
        b,
        'c',
        { type: 'ClientRequest', command: { clientId: 'c', requestId: 1, payload: new Uint8Array([1]) } },
        210,
      ),
      'ClientBatch',
    );
    expect(sent.map((s) => s.to)).toEqual(['p1']);
    // A higher ballot takes over again at once.
    deliver(b, 'p2', info('p2', 5), 220);
    expect(b.leader).toBe('p2');
  });
});

describe('Unbatcher', () => {
  it('replies once per command of a chosen batch, and once only for a duplicated chosen', () => {
    const u = new Unbatcher({ address: 'u' });
    const chosen = {
      type: 'Chosen',
      slot: 4,
      ballot,
      value: { kind: 'batch', batch: encodeBatch([cmd(1, 'c0'), cmd(2, 'c1')]) },
    } as const;
    expect(sends(deliver(u, 'x', chosen))).toEqual([
      { to: 'c0', message: { type: 'ClientReply', clientId: 'c0', requestId: 1, slot: 4 } },
      { to: 'c1', message: { type: 'ClientReply', clientId: 'c1', requestId: 2, slot: 4 } },
    ]);
    expect(sends(deliver(u, 'x', chosen))).toEqual([]);
    expect(sends(deliver(u, 'x', { type: 'Chosen', slot: 5, ballot, value: { kind: 'noop' } }))).toEqual([]);
  });

  it('counts and skips a chosen batch that does not decode, and goes on with the next', () => {
    const u = new Unbatcher({ address: 'u' });
    // Field 1 (a Command) with a length running past the end: not a batch.
    const garbage = new Uint8Array([0x0a, 0x7f, 0x01]);
    const bad = deliver(u, 'x', {
      type: 'Chosen',
      slot: 6,
      ballot,
      value: { kind: 'batch', batch: garbage },
    });
    expect(sends(bad)).toEqual([]);
    expect(bad).toContainEqual({ kind: 'metric', name: 'malformed_batches', op: 'inc', value: 1 });
    const good = deliver(u, 'x', {
      type: 'Chosen',
      slot: 7,
      ballot,
      value: { kind: 'batch', batch: encodeBatch([cmd(3, 'c0')]) },
    });
    expect(sends(good)).toEqual([
      { to: 'c0', message: { type: 'ClientReply', clientId: 'c0', requestId: 3, slot: 7 } },
    ]);
  });
});

describe('Client', () => {
  it('acknowledges a command once with its slot and latency, and resends to the next batcher on timeout', () => {
    const c = new Client({ address: 'c0', members: { batchers: ['b0', 'b1'] }, resendTimeoutMs: 100 });
    const { requestId, effects } = c.submit(0, new Uint8Array([7]));
    expect(sends(effects)).toEqual([
      {
        to: 'b0',
        message: {
          type: 'ClientRequest',
          command: { clientId: 'c0', requestId, payload: new Uint8Array([7]) },
        },
      },
    ]);
    expect(sends(fire(c, 'resend', 50))).toEqual([]);
    expect(sendsOf(fire(c, 'resend', 100), 'ClientRequest').map((s) => s.to)).toEqual(['b1']);
    const reply = { type: 'ClientReply', clientId: 'c0', requestId, slot: 9 } as const;
    expect(deliver(c, 'u', reply, 130)).toContainEqual({
      kind: 'acknowledged',
      requestId,
      slot: 9,
      latencyMs: 130,
    });
    expect(deliver(c, 'u', reply, 140).filter((e) => e.kind === 'acknowledged')).toEqual([]);
    expect(c.pendingCount).toBe(0);
  });

  it('resends at once, to a live batcher, what it sent to a batcher that left, and only that', () => {
    const c = new Client({ address: 'c0', members: { batchers: ['b0', 'b1'] }, resendTimeoutMs: 1000 });
    const sent = [1, 2, 3, 4].map((i) => {
      const { requestId, effects } = c.submit(i, new Uint8Array([i]));
      return { requestId, to: sends(effects)[0]?.to };
    });
    expect(sent.map((x) => x.to)).toEqual(['b0', 'b1', 'b0', 'b1']);
    const [first, second] = sent;
    c.step(5, {
      type: 'message',
      from: 'u',
      message: { type: 'ClientReply', clientId: 'c0', requestId: second?.requestId ?? 0, slot: 0 },
    });

    const left = c.step(10, { type: 'membership', members: { batchers: ['b0', 'b2'] } });
    // Only the command still pending at b1 (the fourth), at 10 ms rather than at the 1 s timeout.
    const resent = sendsOf(left, 'ClientRequest');
    expect(resent.map((s) => s.message.command.requestId)).toEqual([sent[3]?.requestId]);
    expect(['b0', 'b2']).toContain(resent[0]?.to);
    expect(left).toContainEqual({ kind: 'metric', name: 'retransmissions', op: 'inc', value: 1 });
    // A membership event that removes nothing this client used sends nothing.
    expect(sends(c.step(20, { type: 'membership', members: { batchers: ['b0', 'b2', 'b3'] } }))).toEqual([]);

    // The resent command's timeout counts from its resend: at 1 s only the commands sent at 1 and 3 ms expire.
    const expired = sendsOf(fire(c, 'resend', 1005), 'ClientRequest').map((s) => s.message.command.requestId);
    expect(expired).toEqual([first?.requestId, sent[2]?.requestId]);
  });

  it('resends from a departed batcher once one is live again when none is left', () => {
    const c = new Client({ address: 'c0', members: { batchers: ['b0'] }, resendTimeoutMs: 1000 });
    const { requestId } = c.submit(0, new Uint8Array([1]));
    expect(sends(c.step(10, { type: 'membership', members: { batchers: [] } }))).toEqual([]);
    // Nowhere to send it now; the next event that brings a batcher does not wait for the timeout either.
    const back = c.step(20, { type: 'membership', members: { batchers: ['b1'] } });
    expect(sendsOf(back, 'ClientRequest').map((s) => [s.to, s.message.command.requestId])).toEqual([
      ['b1', requestId],
    ]);
  });
});
