import type { Address, ConfigSpec, Message } from './messages.ts';

/**
 * What a role asks its runtime to do after a step (the etcd-raft "Ready" idea): the runtime
 * performs the effects in order. Core never touches a socket, clock or timer itself.
 */
export type Effect =
  | { readonly kind: 'send'; readonly to: Address; readonly message: Message }
  /** Arm (or re-arm, replacing) the named timer; it fires once as a `timer` event. */
  | { readonly kind: 'setTimer'; readonly name: string; readonly delayMs: number }
  | { readonly kind: 'cancelTimer'; readonly name: string }
  /** Client only: the application's command `requestId` is chosen at `slot`. */
  | {
      readonly kind: 'acknowledged';
      readonly requestId: number;
      readonly slot: number;
      readonly latencyMs: number;
    }
  /** A counter increment, a gauge setting, or a histogram sample. */
  | { readonly kind: 'metric'; readonly name: MetricName; readonly op: MetricOp; readonly value: number };

export type MetricOp = 'inc' | 'set' | 'observe';

/** Metric names emitted by core; the seed's counters keep their names. */
export type MetricName =
  | 'num_processed_messages'
  | 'num_incoming_messages'
  | 'num_outgoing_messages'
  | 'p1a'
  | 'p1b_success'
  | 'p1b_preempted'
  | 'p2b_preempted'
  | 'leader_heartbeat_received'
  | 'retransmissions'
  | 'commands_chosen'
  | 'slots_chosen'
  | 'batch_size'
  | 'is_leader'
  | 'chosen_watermark'
  | 'inflight_slots'
  | 'client_latency_ms'
  | 'phase2_latency_ms'
  | 'leader_elections'
  | 'leader_step_downs'
  | 'rejected_messages'
  | 'batches_refused'
  | 'proxy_leaders_suspected'
  | 'malformed_batches'
  | 'match_preempted'
  | 'stale_configurations'
  | 'reconfigurations'
  | 'configuration_version'
  | 'garbage_collections'
  | 'retired_acceptors'
  | 'acceptor_retired'
  | 'matchmaker_epoch'
  | 'matchmaker_reconfigurations'
  | 'ballot_round'
  | 'ballot_proposer_id';

/** Everything that can happen to a role: a message arrives, a timer fires, membership changes. */
export type RoleEvent =
  | { readonly type: 'message'; readonly from: Address; readonly message: Message }
  | { readonly type: 'timer'; readonly name: string }
  | { readonly type: 'membership'; readonly members: Partial<Members> }
  /** Where acceptors listen, by identity (proposers under matchmakers; from the directory). */
  | { readonly type: 'acceptors'; readonly acceptors: readonly AcceptorAddress[] }
  /** The operator's target configuration (proposers under matchmakers; a directory key). */
  | { readonly type: 'target'; readonly spec: ConfigSpec }
  /** The operator's matchmaker set: 2f+1 addresses (proposers under matchmakers; a directory key). */
  | { readonly type: 'matchmakers'; readonly addresses: readonly Address[] };

/** One acceptor's identity and address. */
export interface AcceptorAddress {
  readonly groupId: number;
  readonly acceptorId: number;
  readonly address: Address;
}

/** Live processes of the stateless roles, as the directory reports them. */
export interface Members {
  readonly proposers: readonly Address[];
  readonly batchers: readonly Address[];
  readonly proxyLeaders: readonly Address[];
  readonly unbatchers: readonly Address[];
}

/** A pure role: fed events with the current (injected) time, it returns effects. */
export interface Role {
  readonly address: Address;
  /** Effects to perform once, when the role starts (e.g. its first timers). */
  start(now: number): Effect[];
  step(now: number, event: RoleEvent): Effect[];
}

/** Collects effects for one step; roles use it so handlers read as a list of actions. */
export class Effects {
  readonly list: Effect[] = [];
  send(to: Address, message: Message): void {
    this.list.push({ kind: 'send', to, message });
  }
  setTimer(name: string, delayMs: number): void {
    this.list.push({ kind: 'setTimer', name, delayMs });
  }
  cancelTimer(name: string): void {
    this.list.push({ kind: 'cancelTimer', name });
  }
  acknowledged(requestId: number, slot: number, latencyMs: number): void {
    this.list.push({ kind: 'acknowledged', requestId, slot, latencyMs });
  }
  inc(name: MetricName, value = 1): void {
    this.list.push({ kind: 'metric', name, op: 'inc', value });
  }
  gauge(name: MetricName, value: number): void {
    this.list.push({ kind: 'metric', name, op: 'set', value });
  }
  observe(name: MetricName, value: number): void {
    this.list.push({ kind: 'metric', name, op: 'observe', value });
  }
}
