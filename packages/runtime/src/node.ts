import { randomBytes } from 'node:crypto';
import { AnnaClient, type MemberKind, Membership } from '@paxos/anna-client';
import {
  type Address,
  decodeEnvelope,
  type Effect,
  type Envelope,
  encodeEnvelope,
  type Members,
  type Message,
  type Role,
  type RoleEvent,
  withIncarnation,
  withoutIncarnations,
} from '@paxos/core';
import { Metrics, type RoleLabel, serveMetrics } from '@paxos/metrics';
import { ZmqTransport } from '@paxos/transport-zmq';
import type { Logger } from 'pino';
import { endpointFor, formatAddress } from './address.ts';
import { DirectoryAgent } from './directory-agent.ts';
import { RoleTimers } from './timers.ts';
import { HopTracer, pinoTraceSink } from './trace.ts';

export interface NodeOptions {
  readonly role: RoleLabel;
  readonly instance: string;
  /** Endpoints to bind, in the order of the role's port table (see address.ts). */
  readonly endpoints: readonly string[];
  readonly annaRouting: readonly string[];
  readonly annaKeyPrefix: string;
  readonly maxReadsPerSocketPerPoll: number;
  readonly metricsPort: number;
  readonly metricsHost: string;
  readonly directoryPollMs: number;
  /** Peers whose directory lease has not risen for this long stop getting traffic. */
  readonly leaseTimeoutMs: number;
  readonly drainTimeoutMs: number;
  readonly logger: Logger;
  /** TRACE_SAMPLE: trace the command path one wall-clock second in every this many (0: off; see trace.ts). */
  readonly traceSample?: number;
  /** Client processes: a command was chosen. */
  readonly onAcknowledged?: (client: Address, requestId: number, slot: number, latencyMs: number) => void;
}

/**
 * Runs core roles as a real process: decoded frames in, effects out. Owns the sockets, the
 * timers, the metrics endpoint and the directory registration; the role stays pure.
 */
export class Node {
  readonly address: Address;
  readonly metrics: Metrics;
  readonly membership: Membership;
  /** Keeps this process's registrations and leases alive and reads its peers' (see DirectoryAgent). */
  readonly directoryAgent: DirectoryAgent;
  readonly logger: Logger;
  private readonly roles = new Map<Address, Role>();
  private primary: Role | null = null;
  private readonly timers = new RoleTimers();
  /** What `/readyz` says: starting until the app's start-up is done, draining once it stops. */
  private phase: 'starting' | 'ready' | 'draining' = 'starting';
  /** A role's own condition for readiness (see `requireForReadiness`). */
  private roleReadiness: (() => string | null) | null = null;
  /** When the last message arrived (performance.now()): a draining process waits for quiet. */
  private lastMessageAt = Number.NEGATIVE_INFINITY;
  private lastEncoded: { message: Message | null; from: Address; frame: Uint8Array } = {
    message: null,
    from: '',
    frame: new Uint8Array(0),
  };
  /** Appended to directory entries: Anna's two-phase set never forgets a removed entry, so each life registers anew. */
  readonly incarnation = randomBytes(4).toString('hex');
  /** Null unless TRACE_SAMPLE is set: then the only cost per message is this check. */
  private readonly tracer: HopTracer | null;

  private constructor(
    private readonly options: NodeOptions,
    private readonly transport: ZmqTransport<Envelope>,
    private readonly directory: AnnaClient,
    private readonly metricsServer: { port: number; close(): Promise<void> },
    metrics: Metrics,
    address: Address,
  ) {
    this.address = address;
    this.metrics = metrics;
    this.logger = options.logger;
    this.membership = new Membership(directory, { keyPrefix: options.annaKeyPrefix });
    this.directoryAgent = new DirectoryAgent({
      membership: this.membership,
      pollMs: options.directoryPollMs,
      leaseTimeoutMs: options.leaseTimeoutMs,
      logger: options.logger,
      metrics,
    });
    const sample = options.traceSample ?? 0;
    this.tracer =
      sample > 0
        ? new HopTracer(sample, pinoTraceSink({ role: options.role, instance: options.instance }))
        : null;
  }

  static async start(options: NodeOptions): Promise<Node> {
    let node: Node | null = null;
    const readiness = () => node?.readiness() ?? { ready: false, phase: 'starting' };
    const metrics = new Metrics({
      role: options.role,
      instance: options.instance,
      ready: () => readiness().ready,
    });
    const metricsServer = await serveMetrics(metrics, {
      port: options.metricsPort,
      host: options.metricsHost,
      readiness,
    });
    const transport = await ZmqTransport.open<Envelope>({
      bind: options.endpoints,
      maxReadsPerSocketPerPoll: options.maxReadsPerSocketPerPoll,
      decode: (frame) => {
        const result = decodeEnvelope(frame);
        return result.ok ? { ok: true, value: result.envelope } : { ok: false, reason: result.error.reason };
      },
      onMessage: (envelope) => node?.receive(envelope),
      onReadBurstEnd: () => node?.timers.burstEnded(),
      onInvalid: (reason) => {
        metrics.invalid();
        options.logger.debug({ reason }, 'dropped a frame that did not decode');
      },
      onDrop: () => metrics.dropped(),
      logger: options.logger,
    }).catch(async (err: unknown) => {
      await metricsServer.close();
      throw err;
    });
    const directory = await AnnaClient.connect({
      routing: options.annaRouting.join(','),
      responseHost: options.metricsHost,
      logger: options.logger,
    });
    node = new Node(
      options,
      transport,
      directory,
      metricsServer,
      metrics,
      formatAddress(transport.endpoints),
    );
    options.logger.info(
      { address: node.address, metrics: `http://${options.metricsHost}:${metricsServer.port}/metrics` },
      'listening',
    );
    return node;
  }

  /** Start-up is done (registered, peers known): `/readyz` answers 200 from now until a stop begins. */
  markReady(): void {
    if (this.phase === 'starting') this.phase = 'ready';
  }

  /**
   * What `/readyz` (and the `paxos_ready` gauge) says. Ready: start-up is done (registered in the
   * directory, peers read), the directory answers its polls, and the role's own condition holds
   * (a proposer: a leader is known). Otherwise not ready, with why: `starting`, `draining`,
   * `directory unreachable` or the role's reason.
   */
  readiness(): { ready: boolean; phase: string } {
    if (this.phase !== 'ready') return { ready: false, phase: this.phase };
    if (!this.directoryAgent.reachable) return { ready: false, phase: 'directory unreachable' };
    const waiting = this.roleReadiness?.() ?? null;
    return waiting === null ? { ready: true, phase: 'ready' } : { ready: false, phase: waiting };
  }

  /**
   * Adds a role's own condition to readiness: `check` returns null when it holds, or what the
   * role waits for (e.g. `no leader known`), which `/readyz` answers with its 503.
   */
  requireForReadiness(check: () => string | null): void {
    this.roleReadiness = check;
  }

  get metricsPort(): number {
    return this.metricsServer.port;
  }

  /** Hosts a role; the first one attached receives every message except replies for the others. */
  attach(role: Role): void {
    this.roles.set(role.address, role);
    if (this.primary === null) this.primary = role;
    this.apply(role, role.start(performance.now()));
  }

  /** Delivers a non-message event (e.g. a membership change) to a role. */
  deliver(role: Role, event: RoleEvent): void {
    this.apply(role, role.step(performance.now(), event));
  }

  /** For processes that drive a role from outside (the client load generator). */
  perform(role: Role, effects: Effect[]): void {
    this.apply(role, effects);
  }

  /**
   * Adds this process (or `member`) to the directory's `observed` set of `kind`, tagged with its
   * incarnation, and keeps it there: its lease rises every poll, and it registers again if the
   * directory loses it.
   */
  async register(kind: MemberKind, member: string = this.address): Promise<void> {
    await this.directoryAgent.register(kind, withIncarnation(member, this.incarnation));
  }

  /**
   * Watches `kinds` in the directory; every change of the live members (by lease, see
   * MemberView) is turned into a membership event for `role` by `onChange`. Resolves once every
   * kind has been read once.
   */
  async watch(
    kinds: MemberKind[],
    onChange: (kind: MemberKind, members: string[]) => Partial<Members> | null,
    role: () => Role | null,
  ): Promise<void> {
    const watched = new Set<string>(kinds);
    this.directoryAgent.onChange((change) => {
      if (!watched.has(change.kind)) return;
      const members = onChange(change.kind as MemberKind, withoutIncarnations(change.members));
      const target = role();
      if (members !== null && target !== null) this.deliver(target, { type: 'membership', members });
    });
    await this.directoryAgent.watch(kinds);
  }

  private receive(envelope: Envelope): void {
    if (this.phase === 'draining' && this.primary === null) return;
    this.lastMessageAt = performance.now();
    this.metrics.incoming();
    const { message } = envelope;
    const role = message.type === 'ClientReply' ? this.roles.get(message.clientId) : this.primary;
    if (role === undefined || role === null) {
      this.metrics.dropped();
      return;
    }
    const tracer = this.tracer;
    if (tracer === null) {
      this.handle(role, envelope);
      return;
    }
    tracer.received(message);
    try {
      this.handle(role, envelope);
    } finally {
      tracer.handled();
    }
  }

  private handle(role: Role, envelope: Envelope): void {
    const effects = role.step(performance.now(), {
      type: 'message',
      from: envelope.from,
      message: envelope.message,
    });
    this.metrics.processed();
    this.apply(role, effects);
  }

  private apply(role: Role, effects: Effect[]): void {
    for (const effect of effects) {
      switch (effect.kind) {
        case 'send':
          this.send(role, effect.to, effect);
          break;
        case 'setTimer': {
          const name = effect.name;
          this.timers.set(`${role.address}\u0000${name}`, effect.delayMs, () => {
            if (this.roles.get(role.address) === role) this.deliver(role, { type: 'timer', name });
          });
          break;
        }
        case 'cancelTimer':
          this.timers.clear(`${role.address}\u0000${effect.name}`);
          break;
        case 'metric':
          this.metrics.apply(effect);
          break;
        case 'acknowledged':
          this.options.onAcknowledged?.(role.address, effect.requestId, effect.slot, effect.latencyMs);
          break;
      }
    }
  }

  private send(role: Role, to: Address, effect: Extract<Effect, { kind: 'send' }>): void {
    let frame: Uint8Array;
    let target: string;
    try {
      target = endpointFor(to, effect.message.type);
      // A role often sends one message to several peers (phase-2a to a group, heartbeats): encode once.
      if (effect.message === this.lastEncoded.message && role.address === this.lastEncoded.from) {
        frame = this.lastEncoded.frame;
      } else {
        frame = encodeEnvelope({ from: role.address, message: effect.message });
        this.lastEncoded = { message: effect.message, from: role.address, frame };
      }
    } catch (err) {
      // A peer's malformed address (from a bad frame) must not take the process down.
      this.metrics.dropped();
      this.logger.warn({ to, type: effect.message.type, err: (err as Error).message }, 'cannot send');
      return;
    }
    if (this.transport.send(target, frame)) {
      this.metrics.outgoing();
      this.tracer?.sent(effect.message);
    }
  }

  /**
   * Graceful stop: leave the directory (the two-phase set's `removed`), keep serving while peers
   * notice and in-flight work finishes, then close everything. The drain ends when `isDrained`
   * holds and, with `untilQuiet`, once no message has arrived for a directory poll (see
   * `drainEnd`), or at `drainTimeoutMs` from the stop, whichever comes first.
   */
  async shutdown(
    isDrained: () => boolean = () => true,
    options: { untilQuiet?: boolean } = {},
  ): Promise<void> {
    if (this.phase === 'draining') return;
    this.phase = 'draining';
    const started = performance.now();
    const deadline = started + this.options.drainTimeoutMs;
    // An unreachable directory must not hold the process past its drain timeout.
    await Promise.race([
      this.directoryAgent.deregister(),
      new Promise((resolve) => setTimeout(resolve, this.options.drainTimeoutMs)),
    ]);
    const deregisteredAt = performance.now();
    this.logger.info({ registrations: this.directoryAgent.registered }, 'deregistered; draining');
    const drained = () =>
      drainEnd({
        now: performance.now(),
        started,
        deregisteredAt,
        lastMessageAt: this.lastMessageAt,
        pollMs: this.options.directoryPollMs,
        drainTimeoutMs: this.options.drainTimeoutMs,
        untilQuiet: options.untilQuiet ?? false,
        roleDrained: isDrained(),
      });
    let end = drained();
    while (end === null) {
      await new Promise((resolve) =>
        setTimeout(resolve, Math.min(20, Math.max(1, deadline - performance.now()))),
      );
      end = drained();
    }
    const drainMs = Math.round(performance.now() - deregisteredAt);
    if (end === 'timeout') {
      this.logger.warn(
        {
          drainMs,
          drainTimeoutMs: this.options.drainTimeoutMs,
          roleDrained: isDrained(),
          lastMessageMsAgo: Math.round(performance.now() - this.lastMessageAt),
        },
        'drain timed out: stopping with work in flight or peers still sending (raise DRAIN_TIMEOUT_MS)',
      );
    } else {
      this.logger.info({ drainMs }, 'drained');
    }
    this.directoryAgent.stop();
    this.timers.clearAll();
    this.roles.clear();
    this.primary = null;
    await this.transport.close({ lingerMs: 500 });
    await this.directory.close();
    await this.metricsServer.close();
    this.tracer?.flush();
    this.logger.info({ stopMs: Math.round(performance.now() - started) }, 'stopped');
  }
}

export interface DrainState {
  readonly now: number;
  /** When the stop began; the drain timeout counts from here. */
  readonly started: number;
  readonly deregisteredAt: number;
  readonly lastMessageAt: number;
  readonly pollMs: number;
  readonly drainTimeoutMs: number;
  /** Wait for peers to stop sending, not only for the role's own work. */
  readonly untilQuiet: boolean;
  readonly roleDrained: boolean;
}

/**
 * Whether a draining process may stop now: 'drained', 'timeout', or null to keep serving.
 *
 * Peers route to a stateless role by their view of the directory, which they re-read once per
 * poll: until then they keep sending to a process that has left, and what arrives after it exits
 * is lost. So with `untilQuiet` the drain lasts until no message has arrived for a whole poll
 * period since the deregistration: a peer still routing here with any traffic would have sent
 * something in that time, and every peer has had a poll to see the leave. Without it (roles
 * peers do not pick by membership, which hear heartbeats to the end), one poll and the role's
 * own work decide.
 */
export function drainEnd(s: DrainState): 'drained' | 'timeout' | null {
  const quiet = s.now - Math.max(s.deregisteredAt, s.lastMessageAt) >= s.pollMs;
  const waited = s.now - s.started >= Math.min(s.pollMs + 100, s.drainTimeoutMs);
  if (s.roleDrained && (s.untilQuiet ? quiet : waited)) return 'drained';
  return s.now - s.started >= s.drainTimeoutMs ? 'timeout' : null;
}
