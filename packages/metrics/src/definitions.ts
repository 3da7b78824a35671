import type { MetricName } from '@paxos/core';

/** The `role` label value: which kind of process exports the metrics. */
export type RoleLabel =
  | 'acceptor'
  | 'matchmaker'
  | 'proposer'
  | 'batcher'
  | 'proxy_leader'
  | 'unbatcher'
  | 'client'
  | 'mock'
  | 'directory';

export const ROLE_LABELS: readonly RoleLabel[] = [
  'acceptor',
  'matchmaker',
  'proposer',
  'batcher',
  'proxy_leader',
  'unbatcher',
  'client',
  'mock',
  'directory',
];

export type MetricType = 'counter' | 'gauge' | 'histogram';

/** One metric this package registers (labels `role` and `instance` are added to every one). */
export interface MetricDefinition {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  /** Histograms only: bucket upper bounds (in the metric's unit; `+Inf` is implicit). */
  readonly buckets?: readonly number[];
  /** Labels of its own beyond `role` and `instance` (e.g. `type`). */
  readonly labelNames?: readonly string[];
  /** Label sets exported at 0 from the first scrape, like every unlabelled metric. */
  readonly initialLabels?: readonly Readonly<Record<string, string>>[];
}

/** 0.1 ms … 2 s, in seconds. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2,
];

export const BATCH_SIZE_BUCKETS: readonly number[] = [1, 2, 5, 10, 20, 40, 80, 100, 200];

/**
 * Every metric of this package, in exposition order. The seed's counters keep their exact names
 * (no `_total` suffix).
 */
export const METRIC_DEFINITIONS = [
  // The seed's counters.
  {
    name: 'num_processed_messages',
    type: 'counter',
    help: 'Messages fully handled by this process (decoded and stepped through its role)',
  },
  {
    name: 'num_incoming_messages',
    type: 'counter',
    help: 'Messages received from the network by this process',
  },
  {
    name: 'num_outgoing_messages',
    type: 'counter',
    help: 'Messages sent to the network by this process',
  },
  {
    name: 'p1a',
    type: 'counter',
    help: 'Phase 1a (prepare) messages sent (proposer) or received (acceptor)',
  },
  { name: 'p1b_success', type: 'counter', help: 'Phase 1b promises granted by this acceptor' },
  {
    name: 'p1b_preempted',
    type: 'counter',
    help: 'Phase 1 attempts preempted by a higher ballot (acceptor rejections, proposer candidacies lost)',
  },
  { name: 'p2b_preempted', type: 'counter', help: 'Phase 2 attempts preempted by a higher ballot' },
  {
    name: 'leader_heartbeat_received',
    type: 'counter',
    help: 'Heartbeats from the current leader received by this proposer',
  },
  {
    name: 'num_sent_mock_messages',
    type: 'counter',
    help: 'Messages sent by a mock component into the component under test',
  },
  {
    name: 'num_received_mock_messages',
    type: 'counter',
    help: 'Messages received by a mock component from the component under test',
  },
  // Added for operators.
  {
    name: 'num_invalid_messages',
    type: 'counter',
    help: 'Messages received that could not be decoded or were not valid for this role',
  },
  {
    name: 'num_dropped_messages',
    type: 'counter',
    help: 'Outgoing messages dropped (send queue full or peer unreachable)',
  },
  { name: 'retransmissions', type: 'counter', help: 'Messages re-sent after a timeout' },
  { name: 'commands_chosen', type: 'counter', help: 'Client commands delivered as chosen (unbatcher)' },
  { name: 'slots_chosen', type: 'counter', help: 'Log slots learned as chosen (proposer, proxy leader)' },
  { name: 'leader_elections', type: 'counter', help: 'Leader elections (phase 1 rounds) started' },
  { name: 'is_leader', type: 'gauge', help: '1 if this proposer is the active leader, else 0' },
  {
    name: 'chosen_watermark',
    type: 'gauge',
    help: 'Every log slot below this one is known chosen (proposer)',
  },
  {
    name: 'inflight_slots',
    type: 'gauge',
    help: 'Log slots proposed in phase 2 and not yet chosen',
  },
  {
    name: 'client_latency_seconds',
    type: 'histogram',
    help: 'Client command latency from first send to acknowledgement, in seconds',
    buckets: LATENCY_BUCKETS_SECONDS,
  },
  {
    name: 'phase2_latency_seconds',
    type: 'histogram',
    help: 'Phase 2 latency from first 2a to a quorum of 2b, in seconds',
    buckets: LATENCY_BUCKETS_SECONDS,
  },
  {
    name: 'batch_size',
    type: 'histogram',
    help: 'Client commands per batch',
    buckets: BATCH_SIZE_BUCKETS,
  },
  // Added with membership that survives faults (Prometheus naming: paxos_ prefix, _total counters).
  {
    name: 'paxos_leader_step_downs_total',
    type: 'counter',
    help: 'Times this leader stepped down because it heard nothing (not even its own heartbeats, or nothing about its slots)',
  },
  {
    name: 'paxos_rejected_messages_total',
    type: 'counter',
    help: 'Phase 1/2 messages this acceptor refused: another configuration than the one it serves, or a slot its group does not own',
  },
  {
    name: 'paxos_batches_refused_total',
    type: 'counter',
    help: 'Batches this leader refused because its queue was full (the batcher was asked to back off)',
  },
  {
    name: 'paxos_proxy_leader_suspicions_total',
    type: 'counter',
    help: 'Times this leader began skipping a proxy leader that let a slot expire (until it answers again)',
  },
  {
    name: 'paxos_malformed_batches_total',
    type: 'counter',
    help: 'Chosen batches this unbatcher could not decode (skipped; their clients resend)',
  },
  {
    name: 'paxos_match_preempted_total',
    type: 'counter',
    help: 'Elections this proposer gave up because a matchmaker had recorded a higher ballot',
  },
  {
    name: 'paxos_stale_configurations_total',
    type: 'counter',
    help: 'Matchings a matchmaker refused because it holds a newer configuration version (the proposer adopts it)',
  },
  {
    name: 'paxos_reconfigurations_total',
    type: 'counter',
    help: 'Times this leader moved to a new ballot with a new configuration while serving (phase-1 bypass)',
  },
  {
    name: 'paxos_configuration_version',
    type: 'gauge',
    help: "Version of the configuration this leader's ballot uses",
  },
  {
    name: 'paxos_garbage_collections_total',
    type: 'counter',
    help: 'Garbage collections this leader completed at the matchmakers (configurations of older ballots dropped)',
  },
  {
    name: 'paxos_acceptor_retired',
    type: 'gauge',
    help: '1 once this acceptor obeyed a Retire (it never promises or votes again; its log is kept)',
  },
  {
    name: 'paxos_matchmaker_epoch',
    type: 'gauge',
    help: 'Epoch of the matchmaker set this proposer uses (it rises each time the set is replaced)',
  },
  {
    name: 'paxos_matchmaker_reconfigurations_total',
    type: 'counter',
    help: 'Matchmaker sets this proposer replaced (stopped the old, bootstrapped and chose the new)',
  },
  {
    name: 'paxos_retired_acceptors_total',
    type: 'counter',
    help: 'Acceptors this leader retired after garbage collection (they never vote again)',
  },
  // Added with the matchmaker process (issue 16).
  {
    name: 'paxos_matchmaker_requests_total',
    type: 'counter',
    help: 'Requests this matchmaker received, by message type (MatchA, GarbageA, ...)',
    labelNames: ['type'],
    initialLabels: [{ type: 'MatchA' }, { type: 'GarbageA' }],
  },
  {
    name: 'paxos_live_configurations',
    type: 'gauge',
    help: 'Configurations this matchmaker holds (entries at or above its GC ballot; 0 while it has no state)',
  },
  {
    name: 'paxos_directory_reregistrations_total',
    type: 'counter',
    help: 'Times this process registered again because the directory had lost its entry (a directory restart)',
  },
  {
    name: 'paxos_member_leases_expired_total',
    type: 'counter',
    help: 'Peers this process stopped routing to because their directory lease stopped rising (paused, killed or cut off)',
  },
  // Added with the status page (issue 17).
  {
    name: 'paxos_ballot_round',
    type: 'gauge',
    help: 'Round of the ballot this proposer leads in or last ran for (with is_leader 1: the leader ballot)',
  },
  {
    name: 'paxos_ballot_proposer_id',
    type: 'gauge',
    help: 'Proposer id of the ballot this proposer leads in or last ran for (unique per incarnation)',
  },
  // Added with health and readiness (issue 17).
  {
    name: 'paxos_ready',
    type: 'gauge',
    help: 'What /readyz says at the scrape: 1 when registered in the directory, connected to peers and (a proposer) a leader is known, else 0',
  },
] as const satisfies readonly MetricDefinition[];

/**
 * The directory's own metrics (the Anna-compatible server, `role="directory"`), beside
 * `paxos_ready` and prom-client's process metrics; see {@link DirectoryMetrics}.
 */
export const DIRECTORY_METRIC_DEFINITIONS = [
  {
    name: 'paxos_directory_keys',
    type: 'gauge',
    help: 'Keys the directory holds (membership sets, leases, targets)',
  },
  {
    name: 'paxos_directory_requests_total',
    type: 'counter',
    help: 'Requests the directory answered, by type (address: routing, key: storage)',
    labelNames: ['type'],
  },
  {
    name: 'paxos_directory_dropped_requests_total',
    type: 'counter',
    help: 'Requests the directory ignored (fault injection in tests)',
  },
  {
    name: 'paxos_directory_invalid_frames_total',
    type: 'counter',
    help: 'Frames the directory could not decode',
  },
] as const satisfies readonly MetricDefinition[];

/** A name of a metric this package registers. */
export type PaxosMetricName = (typeof METRIC_DEFINITIONS)[number]['name'];

/** Every metric name this package registers (not counting prom-client's default process metrics). */
export const METRIC_NAMES: readonly PaxosMetricName[] = METRIC_DEFINITIONS.map((d) => d.name);

/** How a core `metric` effect lands in the registry. */
export interface CoreMetricMapping {
  /** The registered metric it moves. */
  readonly metric: PaxosMetricName;
  /** Multiplier applied to the value before it is recorded (ms → s is 0.001). */
  readonly scale: number;
}

/**
 * Every core `MetricName` → the metric it moves. Typed as `Record<MetricName, …>`, so TypeScript
 * rejects this object if core adds a name that is not mapped here (or if a key is not a core name).
 */
export const CORE_METRICS: Readonly<Record<MetricName, CoreMetricMapping>> = {
  num_processed_messages: { metric: 'num_processed_messages', scale: 1 },
  num_incoming_messages: { metric: 'num_incoming_messages', scale: 1 },
  num_outgoing_messages: { metric: 'num_outgoing_messages', scale: 1 },
  p1a: { metric: 'p1a', scale: 1 },
  p1b_success: { metric: 'p1b_success', scale: 1 },
  p1b_preempted: { metric: 'p1b_preempted', scale: 1 },
  p2b_preempted: { metric: 'p2b_preempted', scale: 1 },
  leader_heartbeat_received: { metric: 'leader_heartbeat_received', scale: 1 },
  retransmissions: { metric: 'retransmissions', scale: 1 },
  commands_chosen: { metric: 'commands_chosen', scale: 1 },
  slots_chosen: { metric: 'slots_chosen', scale: 1 },
  batch_size: { metric: 'batch_size', scale: 1 },
  is_leader: { metric: 'is_leader', scale: 1 },
  chosen_watermark: { metric: 'chosen_watermark', scale: 1 },
  inflight_slots: { metric: 'inflight_slots', scale: 1 },
  client_latency_ms: { metric: 'client_latency_seconds', scale: 0.001 },
  phase2_latency_ms: { metric: 'phase2_latency_seconds', scale: 0.001 },
  leader_elections: { metric: 'leader_elections', scale: 1 },
  leader_step_downs: { metric: 'paxos_leader_step_downs_total', scale: 1 },
  rejected_messages: { metric: 'paxos_rejected_messages_total', scale: 1 },
  batches_refused: { metric: 'paxos_batches_refused_total', scale: 1 },
  proxy_leaders_suspected: { metric: 'paxos_proxy_leader_suspicions_total', scale: 1 },
  malformed_batches: { metric: 'paxos_malformed_batches_total', scale: 1 },
  match_preempted: { metric: 'paxos_match_preempted_total', scale: 1 },
  stale_configurations: { metric: 'paxos_stale_configurations_total', scale: 1 },
  reconfigurations: { metric: 'paxos_reconfigurations_total', scale: 1 },
  configuration_version: { metric: 'paxos_configuration_version', scale: 1 },
  garbage_collections: { metric: 'paxos_garbage_collections_total', scale: 1 },
  retired_acceptors: { metric: 'paxos_retired_acceptors_total', scale: 1 },
  acceptor_retired: { metric: 'paxos_acceptor_retired', scale: 1 },
  matchmaker_epoch: { metric: 'paxos_matchmaker_epoch', scale: 1 },
  matchmaker_reconfigurations: { metric: 'paxos_matchmaker_reconfigurations_total', scale: 1 },
  ballot_round: { metric: 'paxos_ballot_round', scale: 1 },
  ballot_proposer_id: { metric: 'paxos_ballot_proposer_id', scale: 1 },
};

/** Every core `MetricName`, derived from {@link CORE_METRICS} (so it is complete by construction). */
export const CORE_METRIC_NAMES: readonly MetricName[] = Object.keys(CORE_METRICS) as MetricName[];
