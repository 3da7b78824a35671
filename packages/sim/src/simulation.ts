import {
  Acceptor,
  type Address,
  Batcher,
  type BatcherOptions,
  Client,
  type Configuration,
  decodeEnvelope,
  type Effect,
  encodeEnvelope,
  formatBallot,
  type Members,
  type Message,
  Proposer,
  type ProposerOptions,
  ProxyLeader,
  type ProxyLeaderOptions,
  type Role,
  type RoleEvent,
  Unbatcher,
} from '@paxos/core';
import { describe, SafetyChecker } from './checker.ts';
import { EventQueue } from './event-queue.ts';
import { Rng } from './rng.ts';

/** Probabilities per message sent (drop, duplicate, delay) and per step (crash, partition). */
export interface FaultRates {
  readonly drop: number;
  readonly duplicate: number;
  readonly delay: number;
  readonly crash: number;
  readonly partition: number;
}

export const DEFAULT_FAULTS: FaultRates = {
  drop: 0.03,
  duplicate: 0.03,
  delay: 0.05,
  crash: 0.01,
  partition: 0.005,
};
export const NO_FAULTS: FaultRates = { drop: 0, duplicate: 0, delay: 0, crash: 0, partition: 0 };

export interface SimulationOptions {
  readonly seed: number;
  /** Steps (events processed) during which faults are injected; then the cluster must recover. */
  readonly steps: number;
  readonly f?: number;
  readonly groups?: number;
  readonly proposers?: number;
  readonly batchers?: number;
  readonly proxyLeaders?: number;
  readonly unbatchers?: number;
  readonly clients?: number;
  /** Each client submits commands in a closed loop while faults are injected, up to this many. */
  readonly commandsPerClient?: number;
  /** Commands each client keeps outstanding. */
  readonly clientWindow?: number;
  readonly batchSize?: number;
  readonly faults?: Partial<FaultRates>;
  /** Virtual time allowed, once faults stop, for every submitted command to be acknowledged. */
  readonly livenessTimeoutMs?: number;
  /** Encode and decode every message with the wire codec, as the real transport does. */
  readonly wire?: boolean;
  readonly trace?: (line: string) => void;
  /** Role factories, so tests can plant bugs in a role without touching production code. */
  readonly makeProposer?: (options: ProposerOptions) => Role;
  readonly makeProxyLeader?: (options: ProxyLeaderOptions) => Role;
  readonly makeBatcher?: (options: BatcherOptions) => Role;
}

export interface Violation {
  readonly kind: 'safety' | 'liveness';
  readonly step: number;
  readonly timeMs: number;
  readonly message: string;
}

export interface SimulationStats {
  delivered: number;
  dropped: number;
  duplicated: number;
  crashes: number;
  restarts: number;
  partitions: number;
  elections: number;
  submitted: number;
  acknowledged: number;
  slotsChosen: number;
}

export interface SimulationResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly violation: Violation | null;
  readonly steps: number;
  readonly virtualTimeMs: number;
  readonly stats: SimulationStats;
}

type RoleKind = 'proposer' | 'batcher' | 'proxyLeader' | 'acceptor' | 'unbatcher' | 'client';

interface Process {
  readonly address: Address;
  readonly kind: RoleKind;
  readonly index: number;
  role: Role;
  alive: boolean;
  incarnation: number;
  readonly timers: Map<string, number>;
}

type SimEvent =
  | {
      readonly kind: 'deliver';
      readonly from: Address;
      readonly to: Address;
      readonly message: Message;
      readonly frame: Uint8Array | null;
    }
  | {
      readonly kind: 'timer';
      readonly to: Address;
      readonly name: string;
      readonly generation: number;
      readonly incarnation: number;
    }
  | { readonly kind: 'restart'; readonly to: Address }
  | { readonly kind: 'heal' };

/** Virtual-time settings of the simulated cluster: fast, so 300 steps see elections and resends. */
const SIM_TIMING = {
  proposer: {
    heartbeatIntervalMs: 20,
    electionTimeoutMs: 100,
    electionJitterMs: 100,
    phase1RetryMs: 40,
    resendTimeoutMs: 80,
  },
  proxyLeader: { thriftyTimeoutMs: 15 },
  batchTimeoutMs: 2,
  clientResendMs: 200,
  latencyMs: [1, 3] as const,
  extraDelayMs: [10, 60] as const,
  restartAfterMs: [20, 300] as const,
  partitionMs: [20, 300] as const,
};

/**
 * Runs a whole cluster in one process on a virtual clock. Every random choice (latency, faults,
 * election jitter) comes from one seeded stream, so a seed always replays the same run.
 */
export class Simulation {
  readonly options: Required<
    Omit<SimulationOptions, 'trace' | 'makeProposer' | 'makeProxyLeader' | 'makeBatcher' | 'faults'>
  >;
  readonly faults: FaultRates;
  readonly config: Configuration;
  readonly checker: SafetyChecker;
  private readonly rng: Rng;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly processes = new Map<Address, Process>();
  private readonly members: Members;
  private readonly isolated = new Set<Address>();
  private readonly trace: ((line: string) => void) | undefined;
  private readonly makeProposer: (options: ProposerOptions) => Role;
  private readonly makeProxyLeader: (options: ProxyLeaderOptions) => Role;
  private readonly makeBatcher: (options: BatcherOptions) => Role;
  private readonly clientProgress = new Map<Address, { submitted: number; acknowledged: number }>();
  private now = 0;
  private stepCount = 0;
  private faultPhase = true;
  private violation: Violation | null = null;
  readonly stats: SimulationStats = {
    delivered: 0,
    dropped: 0,
    duplicated: 0,
    crashes: 0,
    restarts: 0,
    partitions: 0,
    elections: 0,
    submitted: 0,
    acknowledged: 0,
    slotsChosen: 0,
  };

  constructor(options: SimulationOptions) {
    this.options = {
      seed: options.seed,
      steps: options.steps,
      f: options.f ?? 1,
      groups: options.groups ?? 2,
      proposers: options.proposers ?? 2,
      batchers: options.batchers ?? 2,
      proxyLeaders: options.proxyLeaders ?? 2,
      unbatchers: options.unbatchers ?? 2,
      clients: options.clients ?? 3,
      commandsPerClient: options.commandsPerClient ?? Number.POSITIVE_INFINITY,
      clientWindow: options.clientWindow ?? 2,
      batchSize: options.batchSize ?? 3,
      livenessTimeoutMs: options.livenessTimeoutMs ?? 10_000,
      wire: options.wire ?? false,
    };
    this.faults = { ...DEFAULT_FAULTS, ...options.faults };
    this.trace = options.trace;
    this.makeProposer = options.makeProposer ?? ((o) => new Proposer(o));
    this.makeProxyLeader = options.makeProxyLeader ?? ((o) => new ProxyLeader(o));
    this.makeBatcher = options.makeBatcher ?? ((o) => new Batcher(o));
    this.rng = new Rng(options.seed);

    const o = this.options;
    const range = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}/${i}`);
    this.members = {
      proposers: range(o.proposers, 'proposer'),
      batchers: range(o.batchers, 'batcher'),
      proxyLeaders: range(o.proxyLeaders, 'proxy'),
      unbatchers: range(o.unbatchers, 'unbatcher'),
    };
    this.config = {
      f: o.f,
      groups: Array.from({ length: o.groups }, (_, g) => ({
        groupId: g,
        acceptors: Array.from({ length: 2 * o.f + 1 }, (_, a) => `acceptor/g${g}/${a}`),
      })),
    };
    this.checker = new SafetyChecker(this.config);

    const add = (address: Address, kind: RoleKind, index: number) => {
      this.processes.set(address, {
        address,
        kind,
        index,
        role: this.newRole(kind, address, index, 0),
        alive: true,
        incarnation: 0,
        timers: new Map(),
      });
    };
    const addAll = (addresses: readonly Address[], kind: RoleKind) => {
      for (const [i, address] of addresses.entries()) add(address, kind, i);
    };
    addAll(this.members.proposers, 'proposer');
    addAll(this.members.batchers, 'batcher');
    addAll(this.members.proxyLeaders, 'proxyLeader');
    addAll(this.members.unbatchers, 'unbatcher');
    for (const group of this.config.groups) addAll(group.acceptors, 'acceptor');
    for (let c = 0; c < o.clients; c++) {
      add(`client/${c}`, 'client', c);
      this.clientProgress.set(`client/${c}`, { submitted: 0, acknowledged: 0 });
    }
  }

  /** Runs the fault phase, then the recovery phase; stops at the first violation. */
  run(): SimulationResult {
    for (const p of this.processes.values()) this.apply(p, p.role.start(this.now));
    for (const address of this.clientProgress.keys()) {
      for (let i = 0; i < this.options.clientWindow; i++) this.submitNext(address);
    }

    while (this.violation === null && this.stepCount < this.options.steps && this.queue.size > 0) {
      this.maybeInjectFault();
      this.step();
    }
    if (this.violation === null) this.recover();
    return {
      seed: this.options.seed,
      ok: this.violation === null,
      violation: this.violation,
      steps: this.stepCount,
      virtualTimeMs: this.now,
      stats: this.stats,
    };
  }

  /**
   * Faults stop, partitions heal, crashed processes (not acceptors) restart. Then every submitted
   * command must be acknowledged and the chosen log must fill its holes, within the deadline.
   */
  private recover(): void {
    this.faultPhase = false;
    this.heal();
    for (const p of this.processes.values()) {
      if (!p.alive && p.kind !== 'acceptor') this.restart(p);
    }
    const deadline = this.now + this.options.livenessTimeoutMs;
    while (this.violation === null && !(this.allClientsDone() && this.checker.logComplete)) {
      const next = this.queue.peekTime();
      if (next === undefined || next > deadline) {
        const after = `${this.options.livenessTimeoutMs} ms after faults stopped`;
        if (!this.allClientsDone()) {
          const pending = [...this.processes.values()]
            .filter((p) => p.kind === 'client')
            .map((p) => `${p.address}: ${(p.role as Client).pendingRequestIds().join(',') || 'none'}`)
            .join('; ');
          this.fail('liveness', `commands still pending ${after} (${pending})`);
        } else {
          this.fail(
            'liveness',
            `slot ${this.checker.chosenPrefix} is still a hole in the chosen log ${after}`,
          );
        }
        return;
      }
      this.step();
    }
  }

  private allClientsDone(): boolean {
    for (const progress of this.clientProgress.values()) {
      if (progress.acknowledged < progress.submitted) return false;
    }
    return true;
  }

  private step(): void {
    const next = this.queue.pop();
    if (next === undefined) return;
    this.now = next.time;
    this.stepCount++;
    const event = next.item;
    switch (event.kind) {
      case 'deliver':
        this.deliver(event.from, event.to, event.message, event.frame);
        break;
      case 'timer': {
        const p = this.processes.get(event.to);
        if (p === undefined || !p.alive || p.incarnation !== event.incarnation) return;
        if (p.timers.get(event.name) !== event.generation) return;
        p.timers.delete(event.name);
        this.log(`timer ${event.to} ${event.name}`);
        this.apply(p, p.role.step(this.now, { type: 'timer', name: event.name }));
        break;
      }
      case 'restart': {
        const p = this.processes.get(event.to);
        if (p !== undefined && !p.alive) this.restart(p);
        break;
      }
      case 'heal':
        this.heal();
        break;
    }
  }

  private deliver(from: Address, to: Address, sent: Message, frame: Uint8Array | null): void {
    const p = this.processes.get(to);
    if (p === undefined || !p.alive || this.isolated.has(from) !== this.isolated.has(to)) {
      this.stats.dropped++;
      this.log(
        `lost ${from} -> ${to} ${summarize(sent)}${p?.alive === false ? ' (crashed)' : ' (partitioned)'}`,
      );
      return;
    }
    let message = sent;
    if (frame !== null) {
      const decoded = decodeEnvelope(frame);
      if (!decoded.ok) {
        this.fail('safety', `a frame from ${from} did not decode: ${decoded.error.reason}`);
        return;
      }
      message = decoded.envelope.message;
    }
    this.stats.delivered++;
    this.log(`deliver ${from} -> ${to} ${summarize(message)}`);
    const event: RoleEvent = { type: 'message', from, message };
    this.apply(p, p.role.step(this.now, event));
  }

  private apply(p: Process, effects: Effect[]): void {
    for (const effect of effects) {
      if (this.violation !== null) return;
      switch (effect.kind) {
        case 'send':
          this.observeSend(p, effect.to, effect.message);
          this.send(p.address, effect.to, effect.message);
          break;
        case 'setTimer': {
          const generation = (p.timers.get(effect.name) ?? 0) + 1;
          p.timers.set(effect.name, generation);
          this.queue.push(this.now + effect.delayMs, {
            kind: 'timer',
            to: p.address,
            name: effect.name,
            generation,
            incarnation: p.incarnation,
          });
          break;
        }
        case 'cancelTimer':
          p.timers.delete(effect.name);
          break;
        case 'metric':
          if (effect.name === 'leader_elections') this.stats.elections += effect.value;
          break;
        case 'acknowledged': {
          const violation = this.checker.checkAcknowledged(p.address, effect.requestId, effect.slot);
          if (violation !== null) {
            this.fail('safety', violation);
            return;
          }
          this.stats.acknowledged++;
          const progress = this.clientProgress.get(p.address);
          if (progress !== undefined) progress.acknowledged++;
          this.log(`ack ${p.address}#${effect.requestId} at slot ${effect.slot}`);
          this.submitNext(p.address);
          break;
        }
      }
    }
  }

  /** Ground truth comes from what acceptors vote and what proxy leaders announce. */
  private observeSend(p: Process, to: Address, message: Message): void {
    if (p.kind === 'acceptor' && message.type === 'Phase2b') {
      const accepted = (p.role as Acceptor).accepted(message.slot);
      if (accepted === undefined) {
        this.fail('safety', `${p.address} voted for slot ${message.slot} without accepting it`);
        return;
      }
      const before = this.checker.chosen.size;
      const violation = this.checker.recordVote(
        message.groupId,
        message.acceptorId,
        message.slot,
        message.ballot,
        accepted.value,
      );
      if (violation !== null) {
        this.fail('safety', violation);
        return;
      }
      if (this.checker.chosen.size > before) {
        this.stats.slotsChosen++;
        this.log(
          `CHOSEN slot ${message.slot} = ${describe(accepted.value)} in ${formatBallot(message.ballot)}`,
        );
      }
    } else if (p.kind === 'proxyLeader' && message.type === 'Chosen') {
      const violation = this.checker.checkAnnouncement(message.slot, message.value);
      if (violation !== null) this.fail('safety', `${p.address} -> ${to}: ${violation}`);
    }
  }

  private send(from: Address, to: Address, message: Message): void {
    const frame = this.options.wire ? encodeEnvelope({ from, message }) : null;
    if (this.faultPhase && this.rng.chance(this.faults.drop)) {
      this.stats.dropped++;
      this.log(`drop ${from} -> ${to} ${summarize(message)}`);
      return;
    }
    const copies = this.faultPhase && this.rng.chance(this.faults.duplicate) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      let latency = this.rng.int(SIM_TIMING.latencyMs[0], SIM_TIMING.latencyMs[1]);
      if (this.faultPhase && this.rng.chance(this.faults.delay)) {
        latency += this.rng.int(SIM_TIMING.extraDelayMs[0], SIM_TIMING.extraDelayMs[1]);
      }
      this.queue.push(this.now + latency, { kind: 'deliver', from, to, message, frame });
    }
  }

  private maybeInjectFault(): void {
    if (this.rng.chance(this.faults.crash)) this.crashSomeone();
    if (this.isolated.size === 0 && this.rng.chance(this.faults.partition)) this.partition();
  }

  private crashSomeone(): void {
    const crashedPerGroup = new Map<number, number>();
    for (const p of this.processes.values()) {
      if (p.kind === 'acceptor' && !p.alive) {
        const g = groupOfAcceptor(p.address);
        crashedPerGroup.set(g, (crashedPerGroup.get(g) ?? 0) + 1);
      }
    }
    const candidates = [...this.processes.values()].filter(
      (p) =>
        p.alive &&
        p.kind !== 'client' &&
        (p.kind !== 'acceptor' || (crashedPerGroup.get(groupOfAcceptor(p.address)) ?? 0) < this.options.f),
    );
    if (candidates.length === 0) return;
    const victim = this.rng.pick(candidates);
    victim.alive = false;
    victim.timers.clear();
    this.stats.crashes++;
    this.log(`CRASH ${victim.address}`);
    // Acceptors stay down (their memory is the system's memory); the others come back empty.
    if (victim.kind !== 'acceptor') {
      const after = this.rng.int(SIM_TIMING.restartAfterMs[0], SIM_TIMING.restartAfterMs[1]);
      this.queue.push(this.now + after, { kind: 'restart', to: victim.address });
    }
  }

  private restart(p: Process): void {
    p.incarnation++;
    p.alive = true;
    p.timers.clear();
    p.role = this.newRole(p.kind, p.address, p.index, p.incarnation);
    this.stats.restarts++;
    this.log(`RESTART ${p.address} (incarnation ${p.incarnation})`);
    this.apply(p, p.role.start(this.now));
  }

  private partition(): void {
    const all = [...this.processes.keys()];
    const size = this.rng.int(1, Math.floor(all.length / 2));
    while (this.isolated.size < size) this.isolated.add(this.rng.pick(all));
    this.stats.partitions++;
    this.log(`PARTITION {${[...this.isolated].join(' ')}} from the rest`);
    const duration = this.rng.int(SIM_TIMING.partitionMs[0], SIM_TIMING.partitionMs[1]);
    this.queue.push(this.now + duration, { kind: 'heal' });
  }

  private heal(): void {
    if (this.isolated.size === 0) return;
    this.isolated.clear();
    this.log('HEAL partition');
  }

  private submitNext(address: Address): void {
    const progress = this.clientProgress.get(address);
    const p = this.processes.get(address);
    if (!this.faultPhase || progress === undefined || p === undefined) return;
    if (progress.submitted >= this.options.commandsPerClient) return;
    progress.submitted++;
    this.stats.submitted++;
    // Payloads include '|' and arbitrary bytes: the original split messages on '|'.
    const payload = new Uint8Array([
      ...new TextEncoder().encode(`${address}|${progress.submitted}|`),
      this.rng.int(0, 255),
    ]);
    const client = p.role as Client;
    const { requestId, effects } = client.submit(this.now, payload);
    this.checker.recordSubmitted({ clientId: address, requestId, payload });
    this.log(`submit ${address}#${requestId}`);
    this.apply(p, effects);
  }

  private newRole(kind: RoleKind, address: Address, index: number, incarnation: number): Role {
    const random = () => this.rng.next();
    switch (kind) {
      case 'proposer':
        return this.makeProposer({
          address,
          // Unique per incarnation: a restarted proposer must never reuse a ballot.
          proposerId: index + 1 + this.options.proposers * incarnation,
          config: this.config,
          members: this.members,
          random,
          timing: SIM_TIMING.proposer,
        });
      case 'batcher':
        return this.makeBatcher({
          address,
          members: this.members,
          batchSize: this.options.batchSize,
          batchTimeoutMs: SIM_TIMING.batchTimeoutMs,
        });
      case 'proxyLeader':
        return this.makeProxyLeader({ address, members: this.members, timing: SIM_TIMING.proxyLeader });
      case 'acceptor':
        return new Acceptor({ address, groupId: groupOfAcceptor(address), acceptorId: index });
      case 'unbatcher':
        return new Unbatcher({ address });
      case 'client':
        return new Client({ address, members: this.members, resendTimeoutMs: SIM_TIMING.clientResendMs });
    }
  }

  private fail(kind: Violation['kind'], message: string): void {
    if (this.violation !== null) return;
    this.violation = { kind, step: this.stepCount, timeMs: this.now, message };
    this.log(`VIOLATION (${kind}): ${message}`);
  }

  private log(line: string): void {
    if (this.trace !== undefined)
      this.trace(`[${String(this.now).padStart(6)} ms #${this.stepCount}] ${line}`);
  }
}

function groupOfAcceptor(address: Address): number {
  return Number(address.split('/')[1]?.slice(1));
}

/** One line per message for traces. */
export function summarize(m: Message): string {
  switch (m.type) {
    case 'ClientRequest':
      return `ClientRequest #${m.command.requestId}`;
    case 'ClientReply':
      return `ClientReply #${m.requestId} slot=${m.slot}`;
    case 'ClientBatch':
      return `ClientBatch [${m.commands.map((c) => `${c.clientId}#${c.requestId}`).join(',')}]${m.forwarded ? ' (forwarded)' : ''}`;
    case 'LeaderInfo':
      return `LeaderInfo ${m.leader} ${formatBallot(m.ballot)}`;
    case 'Phase1a':
      return `Phase1a ${formatBallot(m.ballot)} from slot ${m.fromSlot}`;
    case 'Phase1b':
      return `Phase1b ${formatBallot(m.ballot)} g${m.groupId}/${m.acceptorId} wm=${m.watermark} accepted=[${m.accepted.map((e) => `${e.slot}:${formatBallot(e.ballot)}`).join(' ')}]`;
    case 'Phase2a':
      return `Phase2a slot=${m.slot} ${formatBallot(m.ballot)} g${m.groupId} ${describe(m.value)} wm=${m.watermark}`;
    case 'Phase2b':
      return `Phase2b slot=${m.slot} ${formatBallot(m.ballot)} g${m.groupId}/${m.acceptorId}`;
    case 'Nack':
      return `Nack slot=${m.slot} ${formatBallot(m.ballot)} promised=${formatBallot(m.promised)}`;
    case 'Chosen':
      return `Chosen slot=${m.slot} ${formatBallot(m.ballot)}${m.value === null ? '' : ` ${describe(m.value)}`}`;
    case 'Heartbeat':
      return `Heartbeat ${formatBallot(m.ballot)} wm=${m.watermark}`;
  }
}

export function runSimulation(options: SimulationOptions): SimulationResult {
  return new Simulation(options).run();
}
