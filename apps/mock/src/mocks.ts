/**
 * Mock components: each stands in for the neighbours of one real role, so that role can be
 * measured alone (the seed's mock_component). An input mock drives the role under test with a
 * bounded window of work in flight; replies that flow back close the window. An output mock
 * counts what comes out (and answers, where the real neighbour would, so the loop closes).
 *
 * Like core roles they are pure: events in, effects out; the app wires them to sockets.
 */
import {
  type Address,
  type Ballot,
  type Command,
  type ConfigStamp,
  decodeBatch,
  type Effect,
  Effects,
  encodeBatch,
  type Members,
  type Message,
  type Role,
  type RoleEvent,
  type Value,
} from '@paxos/core';

/** The configuration a mock leader stamps: its groups in order, under a fixed id per group list. */
function mockStamp(groups: readonly number[]): ConfigStamp {
  return { id: 0x6d6f636b + groups.reduce((sum, g) => sum * 31 + g + 1, 0), groups, acceptorIds: [] };
}

export interface MockCounters {
  /** Messages this mock sent into the role under test. */
  sent(n: number): void;
  /** Messages (or commands) that came out of the role under test; with the round-trip latency when known. */
  received(n: number, latencyMs?: number): void;
}

export const MOCK_MODES = [
  'client',
  'batcher',
  'proposer',
  'proposer-to-proxy-leader',
  'proxy-leader-to-proposer',
  'proxy-leader-to-acceptor',
  'proxy-leader-to-unbatcher',
  'acceptor',
  'unbatcher',
] as const;

export type MockMode = (typeof MOCK_MODES)[number];

export interface MockOptions {
  readonly address: Address;
  readonly counters: MockCounters;
  /** Input mocks: units of work kept in flight (commands, batches or slots). */
  readonly window: number;
  /** Commands per batch, where the mock makes batches. */
  readonly batchSize: number;
  readonly payload: Uint8Array;
  /** Mock proposers: whether this one leads (receives the batches). */
  readonly leader?: boolean;
  /** Mock acceptors: their group and index. */
  readonly groupId?: number;
  readonly acceptorId?: number;
}

/** The directory view an input mock needs: peers of the role under test. */
export interface MockMembers extends Members {
  /** Acceptor groups: group id → acceptor addresses by id. */
  readonly acceptorGroups: ReadonlyMap<number, readonly Address[]>;
}

export const EMPTY_MEMBERS: MockMembers = {
  proposers: [],
  batchers: [],
  proxyLeaders: [],
  unbatchers: [],
  acceptorGroups: new Map(),
};

const MOCK_BALLOT: Ballot = { round: 1, proposerId: 1 };
const TIMER_PUMP = 'pump';
/** How often an input mock that is starved (no peer yet, or a lost reply) tries again. */
const PUMP_MS = 100;

abstract class Mock implements Role {
  readonly address: Address;
  protected members: MockMembers = EMPTY_MEMBERS;
  protected cursor = 0;
  /** Input mocks' work in flight; output mocks leave it empty. */
  protected readonly window: Window;

  constructor(protected readonly o: MockOptions) {
    this.address = o.address;
    this.window = new Window(o.window);
  }

  start(): Effect[] {
    const fx = new Effects();
    fx.setTimer(TIMER_PUMP, PUMP_MS);
    return fx.list;
  }

  step(now: number, event: RoleEvent): Effect[] {
    const fx = new Effects();
    if (event.type === 'message') this.onMessage(fx, now, event.from, event.message);
    else if (event.type === 'timer' && event.name === TIMER_PUMP) {
      this.pump(fx, now);
      fx.setTimer(TIMER_PUMP, PUMP_MS);
    }
    return fx.list;
  }

  /** New members (the app merges directory kinds into one view). */
  setMembers(members: MockMembers): void {
    this.members = members;
  }

  protected abstract onMessage(fx: Effects, now: number, from: Address, message: Message): void;
  /** Input mocks refill their window here. */
  protected pump(_fx: Effects, _now: number): void {}

  protected next<T>(list: readonly T[]): T | undefined {
    return list.length === 0 ? undefined : list[this.cursor++ % list.length];
  }

  protected commands(count: number, clientId: Address, firstId: number): Command[] {
    return Array.from({ length: count }, (_, i) => ({
      clientId,
      requestId: firstId + i,
      payload: this.o.payload,
    }));
  }

  /** Slot `slot`'s batch of BATCH_SIZE commands from this mock, with request ids unique per slot. */
  protected batchFor(slot: number): Value {
    return {
      kind: 'batch',
      batch: encodeBatch(this.commands(this.o.batchSize, this.address, slot * this.o.batchSize)),
    };
  }

  /**
   * One of the replies unit `id` waits for (a vote, a reply to one command of a batch): every one
   * counts as output of the role under test; once the unit's last reply is in, sends more.
   */
  protected onReply(id: number, fx: Effects, now: number): void {
    const { last, latencyMs } = this.window.reply(id, now);
    this.o.counters.received(1, latencyMs);
    if (last) this.pump(fx, now);
  }

  /** The one reply unit `id` waits for: counts it with its latency (a duplicate not at all) and sends more. */
  protected onOnlyReply(id: number, fx: Effects, now: number): void {
    const { latencyMs } = this.window.reply(id, now);
    if (latencyMs !== undefined) this.o.counters.received(1, latencyMs);
    this.pump(fx, now);
  }

  /** Units of work in flight: at most the window, lost ones included until they expire. */
  get inFlight(): number {
    return this.window.inFlight;
  }
}

/**
 * Tracks units in flight by id, for the window and the latency of each. A unit may wait for
 * several replies (a vote from every acceptor, a reply to every command of a batch); it closes
 * with the last one.
 */
class Window {
  private readonly units = new Map<number, { sentAt: number; waiting: number }>();
  constructor(private readonly size: number) {}
  get free(): number {
    return this.size - this.units.size;
  }
  get inFlight(): number {
    return this.units.size;
  }
  open(id: number, now: number, replies = 1): void {
    this.units.set(id, { sentAt: now, waiting: replies });
  }
  /**
   * One reply for `id`. `last` is whether it closed a place in the window (a reply for an id not
   * in flight, a duplicate or one for a lost unit, also counts as last: pumping then is harmless);
   * `latencyMs` is set only when it closed a unit in flight.
   */
  reply(id: number, now: number): { last: boolean; latencyMs?: number } {
    const unit = this.units.get(id);
    if (unit === undefined) return { last: true };
    if (--unit.waiting > 0) return { last: false };
    this.units.delete(id);
    return { last: true, latencyMs: now - unit.sentAt };
  }
  /** Forgets units in flight for longer than `ms` (lost), so the window does not shrink for good. */
  expire(now: number, ms: number): void {
    for (const [id, unit] of this.units) if (now - unit.sentAt > ms) this.units.delete(id);
  }
}

const LOST_AFTER_MS = 2000;

/** Input for a batcher: client commands, one reply each closes its place in the window. */
export class MockClient extends Mock {
  private nextId = 1;

  protected override pump(fx: Effects, now: number): void {
    this.window.expire(now, LOST_AFTER_MS);
    while (this.window.free > 0) {
      const batcher = this.next(this.members.batchers);
      if (batcher === undefined) return;
      const requestId = this.nextId++;
      this.window.open(requestId, now);
      fx.send(batcher, {
        type: 'ClientRequest',
        command: { clientId: this.address, requestId, payload: this.o.payload },
      });
      this.o.counters.sent(1);
    }
  }

  protected onMessage(fx: Effects, now: number, _from: Address, m: Message): void {
    if (m.type !== 'ClientReply') return;
    this.onOnlyReply(m.requestId, fx, now);
  }
}

/** Output for a batcher (a leader that chooses everything at once), or input for a proxy leader. */
export class MockProposer extends Mock {
  protected onMessage(fx: Effects, _now: number, _from: Address, m: Message): void {
    if (m.type !== 'ClientBatch') return;
    // Standing in for everything after the batcher, the unbatcher included: it decodes the batch.
    const commands = commandsOf(m.batch);
    this.o.counters.received(commands.length);
    replyToClients(fx, commands, 0);
  }

  protected override pump(fx: Effects): void {
    // The leader tells batchers to send here, as a real leader's heartbeat does.
    if (this.o.leader === false) return;
    for (const batcher of this.members.batchers) {
      fx.send(batcher, { type: 'LeaderInfo', leader: this.address, ballot: MOCK_BALLOT, backoffMs: 0 });
    }
  }
}

/** Input for a proxy leader: phase-2a for consecutive slots; the proxy's chosen-to-leader closes each. */
export class MockLeader extends Mock {
  private nextSlot = 0;

  protected override pump(fx: Effects, now: number): void {
    this.window.expire(now, LOST_AFTER_MS);
    const groups = [...this.members.acceptorGroups.entries()].sort((a, b) => a[0] - b[0]);
    if (groups.length === 0) return;
    const config = mockStamp(groups.map(([groupId]) => groupId));
    while (this.window.free > 0) {
      const proxy = this.next(this.members.proxyLeaders);
      if (proxy === undefined) return;
      const slot = this.nextSlot++;
      const [groupId, acceptors] = groups[slot % groups.length] as [number, readonly Address[]];
      const value = this.batchFor(slot);
      this.window.open(slot, now);
      fx.send(proxy, {
        type: 'Phase2a',
        slot,
        ballot: MOCK_BALLOT,
        value,
        watermark: 0,
        groupId,
        acceptors,
        config,
      });
      this.o.counters.sent(1);
    }
  }

  protected onMessage(fx: Effects, now: number, _from: Address, m: Message): void {
    if (m.type !== 'Chosen') return;
    this.onOnlyReply(m.slot, fx, now);
  }
}

/** Input for a proposer: batches from a batcher; replies to every command close a batch. */
export class MockBatcher extends Mock {
  private nextBatch = 0;
  private leader: Address | null = null;

  protected override pump(fx: Effects, now: number): void {
    this.window.expire(now, LOST_AFTER_MS);
    while (this.window.free > 0) {
      const target = this.leader ?? this.members.proposers[0];
      if (target === undefined) return;
      const batch = this.nextBatch++;
      this.window.open(batch, now);
      // Request ids encode the batch, so a reply finds its batch.
      const commands = this.commands(this.o.batchSize, this.address, batch * this.o.batchSize);
      fx.send(target, { type: 'ClientBatch', batch: encodeBatch(commands), forwarded: false });
      this.o.counters.sent(1);
    }
  }

  protected onMessage(fx: Effects, now: number, _from: Address, m: Message): void {
    if (m.type === 'LeaderInfo') {
      this.leader = m.leader;
      return;
    }
    if (m.type !== 'ClientReply') return;
    // The mock proxy leader answers once per batch, so the feedback costs less than the work.
    const batch = Math.floor(m.requestId / this.o.batchSize);
    this.onOnlyReply(batch, fx, now);
  }
}

/**
 * Proxy leader mocks. Towards a proposer: an output mock that chooses every phase-2a at once
 * (telling the leader, and the mock batcher once per batch). Towards acceptors or unbatchers: input mocks.
 */
export class MockProxyToProposer extends Mock {
  protected onMessage(fx: Effects, _now: number, from: Address, m: Message): void {
    if (m.type !== 'Phase2a') return;
    this.o.counters.received(1);
    fx.send(from, { type: 'Chosen', slot: m.slot, ballot: m.ballot, value: null });
    // One reply per batch (its first command) tells the mock batcher the batch is done.
    if (m.value.kind === 'batch') replyToClients(fx, commandsOf(m.value.batch).slice(0, 1), m.slot);
  }
}

export class MockProxyToAcceptor extends Mock {
  private nextSlot = 0;

  protected override pump(fx: Effects, now: number): void {
    this.window.expire(now, LOST_AFTER_MS);
    // Each acceptor is told its group owns every slot, so every acceptor under test votes on each.
    const acceptors = [...this.members.acceptorGroups].flatMap(([groupId, members]) =>
      members.map((acceptor) => ({ acceptor, groupId, config: mockStamp([groupId]) })),
    );
    if (acceptors.length === 0) return;
    while (this.window.free > 0) {
      const slot = this.nextSlot++;
      this.window.open(slot, now, acceptors.length);
      const value = this.batchFor(slot);
      // Every acceptor under test votes on every slot: the acceptors' own capacity.
      for (const { acceptor, groupId, config } of acceptors) {
        fx.send(acceptor, {
          type: 'Phase2a',
          slot,
          ballot: MOCK_BALLOT,
          value,
          watermark: Math.max(0, slot - this.o.window),
          groupId,
          acceptors: [],
          config,
        });
      }
      this.o.counters.sent(acceptors.length);
    }
  }

  protected onMessage(fx: Effects, now: number, _from: Address, m: Message): void {
    if (m.type === 'Phase2b') this.onReply(m.slot, fx, now);
  }
}

export class MockProxyToUnbatcher extends Mock {
  private nextSlot = 0;

  protected override pump(fx: Effects, now: number): void {
    this.window.expire(now, LOST_AFTER_MS);
    while (this.window.free > 0) {
      const unbatcher = this.next(this.members.unbatchers);
      if (unbatcher === undefined) return;
      const slot = this.nextSlot++;
      this.window.open(slot, now, this.o.batchSize);
      // The replies come back here: this mock is also the client the unbatcher answers.
      const value = this.batchFor(slot);
      fx.send(unbatcher, { type: 'Chosen', slot, ballot: MOCK_BALLOT, value });
      this.o.counters.sent(1);
    }
  }

  protected onMessage(fx: Effects, now: number, _from: Address, m: Message): void {
    if (m.type === 'ClientReply') this.onReply(m.slot, fx, now);
  }
}

/** Output for a proxy leader (and phase 1 for a proposer): promises everything, votes for everything, remembers nothing. */
export class MockAcceptor extends Mock {
  protected onMessage(fx: Effects, _now: number, from: Address, m: Message): void {
    const groupId = this.o.groupId ?? 0;
    const acceptorId = this.o.acceptorId ?? 0;
    if (m.type === 'Phase1a') {
      fx.send(from, {
        type: 'Phase1b',
        ballot: m.ballot,
        groupId,
        acceptorId,
        watermark: 0,
        accepted: [],
        fromSlot: m.fromSlot,
        nextSlot: 0,
        more: false,
        acceptedEnd: 0,
      });
    } else if (m.type === 'Phase2a') {
      this.o.counters.received(1);
      fx.send(from, { type: 'Phase2b', slot: m.slot, ballot: m.ballot, groupId, acceptorId });
    }
  }
}

/** Output for a proxy leader: counts chosen batches and their commands. */
export class MockUnbatcher extends Mock {
  protected onMessage(_fx: Effects, _now: number, _from: Address, m: Message): void {
    if (m.type === 'Chosen' && m.value !== null) this.o.counters.received(1);
  }
}

/** The commands of a batch this mock decodes; one that does not decode (never sent by a batcher) has none. */
function commandsOf(batch: Uint8Array): readonly Command[] {
  const decoded = decodeBatch(batch);
  return decoded.ok ? decoded.commands : [];
}

function replyToClients(fx: Effects, commands: readonly Command[], slot: number): void {
  for (const c of commands)
    fx.send(c.clientId, { type: 'ClientReply', clientId: c.clientId, requestId: c.requestId, slot });
}

export function createMock(mode: MockMode, options: MockOptions): Mock {
  switch (mode) {
    case 'client':
      return new MockClient(options);
    case 'batcher':
      return new MockBatcher(options);
    case 'proposer':
      return new MockProposer(options);
    case 'proposer-to-proxy-leader':
      return new MockLeader(options);
    case 'proxy-leader-to-proposer':
      return new MockProxyToProposer(options);
    case 'proxy-leader-to-acceptor':
      return new MockProxyToAcceptor(options);
    case 'proxy-leader-to-unbatcher':
      return new MockProxyToUnbatcher(options);
    case 'acceptor':
      return new MockAcceptor(options);
    case 'unbatcher':
      return new MockUnbatcher(options);
  }
}

export type { Mock };
