/** The processes of a local cluster and the ports each one listens on. */

export type RoleName =
  | 'directory'
  | 'acceptor'
  | 'proxy-leader'
  | 'unbatcher'
  | 'proposer'
  | 'batcher'
  | 'client'
  | 'mock';

export interface ProcessSpec {
  /** Unique within the cluster, e.g. `acceptor-g1-a2`; also its `INSTANCE` label. */
  readonly name: string;
  readonly role: RoleName;
  readonly env: Readonly<Record<string, string>>;
  readonly args?: readonly string[];
  /** Ports it binds, for the free-port check and for status. */
  readonly ports: readonly number[];
  readonly metricsPort: number | null;
  /** Stateless roles and acceptors (which recover from their log) are restarted when they die. */
  readonly restart: boolean;
}

export interface TopologyOptions {
  readonly host: string;
  readonly basePort: number;
  readonly f: number;
  readonly groups: number;
  readonly proposers: number;
  readonly batchers: number;
  readonly proxyLeaders: number;
  readonly unbatchers: number;
  readonly batchSize: number;
  readonly keyPrefix: string;
  readonly dataDir: string;
  readonly directoryPollMs: number;
  readonly logLevel: string;
  /** Extra environment for every role process (timeouts, …). */
  readonly extraEnv?: Readonly<Record<string, string>>;
}

export const DEFAULT_TOPOLOGY: TopologyOptions = {
  host: '127.0.0.1',
  basePort: 21000,
  f: 1,
  groups: 2,
  proposers: 2,
  batchers: 2,
  proxyLeaders: 2,
  unbatchers: 2,
  batchSize: 40,
  keyPrefix: 'local',
  dataDir: '.cluster/data',
  directoryPollMs: 300,
  logLevel: 'info',
};

/** Ports come from `basePort` upward in launch order; metrics ports from `basePort + 1000`. */
export function planCluster(o: TopologyOptions): {
  directory: ProcessSpec;
  processes: ProcessSpec[];
  annaRouting: string;
} {
  let nextPort = o.basePort;
  let nextMetrics = o.basePort + 1000;
  const take = () => nextPort++;
  const routingPort = take();
  const storagePort = take();
  const annaRouting = `tcp://${o.host}:${routingPort}`;
  const directory: ProcessSpec = {
    name: 'directory',
    role: 'directory',
    env: {},
    args: ['--host', o.host, '--port', String(routingPort), '--storage-port', String(storagePort)],
    ports: [routingPort, storagePort],
    metricsPort: null,
    restart: true,
  };
  const common = (name: string, metricsPort: number): Record<string, string> => ({
    ANNA_ROUTING: annaRouting,
    ANNA_KEY_PREFIX: o.keyPrefix,
    PRIVATE_IP: o.host,
    METRICS_PORT: String(metricsPort),
    DIRECTORY_POLL_MS: String(o.directoryPollMs),
    LOG_LEVEL: o.logLevel,
    INSTANCE: name,
    F: String(o.f),
    ...o.extraEnv,
  });
  const processes: ProcessSpec[] = [];
  const add = (
    name: string,
    role: RoleName,
    portEnv: Record<string, number>,
    env: Record<string, string> = {},
  ) => {
    const metricsPort = nextMetrics++;
    const ports = Object.values(portEnv);
    processes.push({
      name,
      role,
      env: {
        ...common(name, metricsPort),
        ...Object.fromEntries(Object.entries(portEnv).map(([k, v]) => [k, String(v)])),
        ...env,
      },
      ports,
      metricsPort,
      restart: true,
    });
  };
  // The seed's launch order: acceptors, proxy leaders and unbatchers, proposers, batchers.
  for (let g = 0; g < o.groups; g++) {
    for (let a = 0; a < 2 * o.f + 1; a++) {
      add(
        `acceptor-g${g}-a${a}`,
        'acceptor',
        { ACCEPTOR_PORT: take() },
        {
          ACCEPTOR_GROUP_ID: String(g),
          ACCEPTOR_ID: String(a),
          DATA_DIR: o.dataDir,
        },
      );
    }
  }
  for (let i = 0; i < o.proxyLeaders; i++) {
    add(`proxy-leader-${i}`, 'proxy-leader', {
      PROXY_LEADER_PORT: take(),
      PROXY_LEADER_ACCEPTOR_PORT: take(),
    });
  }
  for (let i = 0; i < o.unbatchers; i++) add(`unbatcher-${i}`, 'unbatcher', { UNBATCHER_PORT: take() });
  for (let i = 0; i < o.proposers; i++) {
    add(
      `proposer-${i}`,
      'proposer',
      { PROPOSER_PORT: take(), PROPOSER_REPLY_PORT: take(), PROPOSER_ELECTION_PORT: take() },
      { ACCEPTOR_GROUPS: String(o.groups) },
    );
  }
  for (let i = 0; i < o.batchers; i++) {
    add(`batcher-${i}`, 'batcher', { BATCHER_PORT: take() }, { BATCH_SIZE: String(o.batchSize) });
  }
  return { directory, processes, annaRouting };
}

/** The next free ports after the cluster's, for load generators. */
export function clientPorts(o: TopologyOptions, index: number): { port: number; metricsPort: number } {
  const plan = planCluster(o);
  const last = Math.max(...plan.processes.flatMap((p) => p.ports));
  const lastMetrics = Math.max(...plan.processes.map((p) => p.metricsPort ?? 0));
  return { port: last + 1 + index, metricsPort: lastMetrics + 1 + index };
}
