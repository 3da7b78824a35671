/** The processes of a cluster, the ports each one listens on and the environment it starts with. */

import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

export type RoleName =
  | 'directory'
  | 'acceptor'
  | 'matchmaker'
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
  /**
   * Environment over `env` for every start after the first: an acceptor starts with
   * ACCEPTOR_LOG_STATE=new and comes back with `existing`, so a log lost while it ran is refused
   * rather than created again empty (see `ACCEPTOR_RESTART_ENV`).
   */
  readonly restartEnv?: Readonly<Record<string, string>>;
  /**
   * Cores this process may use, to emulate an instance size on a shared machine (`LocalLauncher`
   * puts it in a cgroup of its own). Unset: no cap. Launchers that give each process a machine of
   * its own (EC2) ignore it: there the instance type is the size.
   */
  readonly cpuQuota?: number;
}

/** Where a role's built entry point lives, relative to the repository (or the unpacked artifact). */
export function roleEntryPoint(role: RoleName): string {
  return role === 'directory' ? 'packages/anna-client/dist/server-cli.js' : `apps/${role}/dist/main.js`;
}

/** How many processes of each role, and the settings every role process shares. */
export interface ClusterShape {
  readonly f: number;
  readonly groups: number;
  readonly proposers: number;
  readonly batchers: number;
  readonly proxyLeaders: number;
  readonly unbatchers: number;
  readonly batchSize: number;
  readonly keyPrefix: string;
  readonly directoryPollMs: number;
  readonly logLevel: string;
  /** Extra environment for every role process (timeouts, …). */
  readonly extraEnv?: Readonly<Record<string, string>>;
  /** Extra environment for the processes of one role, after `extraEnv` (e.g. `LOG_LEVEL` of acceptors only). */
  readonly roleExtraEnv?: Readonly<Partial<Record<RoleName, Readonly<Record<string, string>>>>>;
}

/** A cluster on one host: consecutive ports from `basePort`. */
export interface TopologyOptions extends ClusterShape {
  readonly host: string;
  readonly basePort: number;
  /** Where the metrics ports start (default `basePort + 1000`), for a benchmark kept within a narrow port range. */
  readonly metricsBasePort?: number;
  readonly dataDir: string;
  /**
   * An existing directory's routing endpoint (`tcp://host:port`, a real Anna cluster or another
   * Anna-compatible server): the cluster uses it and starts no directory of its own.
   */
  readonly directory?: string;
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

/**
 * Each role's default ports (the apps' own defaults; a test checks they agree). A process that
 * has a host to itself, as on EC2, listens on these; the security group opens exactly these.
 */
export const DEFAULT_PORTS = {
  ANNA_ROUTING_PORT: 6450,
  ANNA_STORAGE_PORT: 6200,
  CLIENT_PORT: 10000,
  PROPOSER_PORT: 11000,
  PROPOSER_REPLY_PORT: 11100,
  PROPOSER_ELECTION_PORT: 11200,
  ACCEPTOR_PORT: 12000,
  PROXY_LEADER_PORT: 12100,
  PROXY_LEADER_ACCEPTOR_PORT: 12200,
  BATCHER_PORT: 13000,
  UNBATCHER_PORT: 14000,
  MATCHMAKER_PORT: 15000,
  METRICS_PORT: 16000,
} as const;

export type PortName = keyof typeof DEFAULT_PORTS;

/** Local: ports come from `basePort` upward in launch order; metrics ports from `metricsBasePort` (default `basePort + 1000`). */
export function planCluster(o: TopologyOptions): {
  /** The built-in directory to start, or null with an external one (`directory`). */
  directory: ProcessSpec | null;
  processes: ProcessSpec[];
  annaRouting: string;
} {
  let nextPort = o.basePort;
  let nextMetrics = o.metricsBasePort ?? o.basePort + 1000;
  const routingPort = nextPort++;
  const storagePort = nextPort++;
  // The directory's metrics port is the one just below the roles' (so theirs stay where they were).
  const directoryMetricsPort = nextMetrics - 1;
  const annaRouting = o.directory ?? `tcp://${o.host}:${routingPort}`;
  const directory: ProcessSpec | null =
    o.directory !== undefined
      ? null
      : {
          name: 'directory',
          role: 'directory',
          env: { INSTANCE: 'directory' },
          args: [
            '--host',
            o.host,
            '--port',
            String(routingPort),
            '--storage-port',
            String(storagePort),
            '--metrics-port',
            String(directoryMetricsPort),
          ],
          ports: [routingPort, storagePort],
          metricsPort: directoryMetricsPort,
          restart: true,
        };
  const processes = roleProcesses(o, {
    port: () => nextPort++,
    metricsPort: () => nextMetrics++,
    annaRouting,
    host: o.host,
    dataDir: o.dataDir,
  });
  return { directory, processes, annaRouting };
}

/**
 * One process per host, as on EC2: every process listens on its role's default ports and serves
 * metrics on 16000. PRIVATE_IP is left out: each host learns its own at boot.
 */
export function planHostPerProcess(o: HostPerProcessOptions): ProcessSpec[] {
  return roleProcesses(o, hostPerProcessPlacement(o));
}

/** A cluster with a host per process: its shape, its directory, and where stateful roles keep their state. */
export type HostPerProcessOptions = ClusterShape & { readonly annaRouting: string; readonly dataDir: string };

function hostPerProcessPlacement(o: HostPerProcessOptions): Placement {
  return {
    port: (name) => DEFAULT_PORTS[name],
    metricsPort: () => DEFAULT_PORTS.METRICS_PORT,
    annaRouting: o.annaRouting,
    dataDir: o.dataDir,
  };
}

/**
 * The directory (the local Anna-compatible server) on a host of its own, listening on every
 * interface and advertising the host's address.
 */
export function hostPerProcessDirectory(): ProcessSpec {
  return {
    name: 'directory',
    role: 'directory',
    env: {},
    args: [
      '--host',
      '0.0.0.0',
      '--port',
      String(DEFAULT_PORTS.ANNA_ROUTING_PORT),
      '--storage-port',
      String(DEFAULT_PORTS.ANNA_STORAGE_PORT),
      // The host's own address, which it learns at boot (EC2 user-data writes PRIVATE_IP).
      '--public-host',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: expanded on the host, not here
      '${PRIVATE_IP}',
      '--metrics-port',
      String(DEFAULT_PORTS.METRICS_PORT),
    ],
    ports: [DEFAULT_PORTS.ANNA_ROUTING_PORT, DEFAULT_PORTS.ANNA_STORAGE_PORT],
    metricsPort: DEFAULT_PORTS.METRICS_PORT,
    restart: true,
  };
}

/** The directory endpoint of a directory host at `address`. */
export function annaRoutingAt(address: string): string {
  return `tcp://${address}:${DEFAULT_PORTS.ANNA_ROUTING_PORT}`;
}

/** What every role process is told: the directory, its own address and metrics port, its name. */
export interface RoleEnvOptions {
  readonly annaRouting: string;
  readonly keyPrefix: string;
  /** PRIVATE_IP; left out where each host learns its own at boot. */
  readonly host?: string;
  readonly metricsPort: number;
  readonly directoryPollMs: number;
  readonly logLevel: string;
  readonly instance: string;
}

/** The environment every role process (load generators and mocks too) starts with. */
export function roleEnv(o: RoleEnvOptions): Record<string, string> {
  return {
    ANNA_ROUTING: o.annaRouting,
    ANNA_KEY_PREFIX: o.keyPrefix,
    ...(o.host === undefined ? {} : { PRIVATE_IP: o.host }),
    METRICS_PORT: String(o.metricsPort),
    DIRECTORY_POLL_MS: String(o.directoryPollMs),
    LOG_LEVEL: o.logLevel,
    INSTANCE: o.instance,
  };
}

interface Placement {
  readonly port: (name: PortName) => number;
  readonly metricsPort: () => number;
  readonly annaRouting: string;
  readonly host?: string;
  readonly dataDir: string;
}

/**
 * ACCEPTOR_LOG_STATE (the acceptor app's setting): `new` creates the log if its directory is
 * missing or empty; `existing` needs it there, since the acceptor has run before; `replacement`
 * starts a new empty one for an acceptor whose log is lost for good. A plan starts every acceptor
 * with `new` and restarts it with `existing` (`restartEnv`); a supervisor that finds a log
 * already there at the first start (`holdsDurableState`) starts it with `existing` too.
 */
export const ACCEPTOR_LOG_STATE = 'ACCEPTOR_LOG_STATE';
export const ACCEPTOR_RESTART_ENV: Readonly<Record<string, string>> = { [ACCEPTOR_LOG_STATE]: 'existing' };

/**
 * MATCHMAKER_STATE (the matchmaker app's setting), with ACCEPTOR_LOG_STATE's values and the same
 * rule: `new` at the first start (the genesis state), `existing` on every restart.
 */
export const MATCHMAKER_STATE = 'MATCHMAKER_STATE';
export const MATCHMAKER_RESTART_ENV: Readonly<Record<string, string>> = { [MATCHMAKER_STATE]: 'existing' };

/** `DATA_DIR/<ANNA_KEY_PREFIX or paxos>-<suffix>`, with characters a file name cannot hold as `_`. */
function stateDirIn(
  env: Readonly<Record<string, string | undefined>>,
  dataDir: string,
  suffix: string,
): string {
  const cluster = (env.ANNA_KEY_PREFIX || 'paxos').replace(/[^A-Za-z0-9._-]/g, '_');
  return path.join(dataDir, `${cluster}-${suffix}`);
}

/**
 * An acceptor's log directory from its environment: `DATA_DIR/<ANNA_KEY_PREFIX or paxos>-g<group>-a<id>`,
 * with characters a file name cannot hold as `_`; null for a process that is no acceptor. The
 * runtime's rule (`acceptorLogDir`; a test checks they agree), repeated here because the
 * launcher does not load the runtime.
 */
export function acceptorLogDirOf(env: Readonly<Record<string, string | undefined>>): string | null {
  const { DATA_DIR, ACCEPTOR_GROUP_ID, ACCEPTOR_ID } = env;
  if (DATA_DIR === undefined || ACCEPTOR_GROUP_ID === undefined || ACCEPTOR_ID === undefined) return null;
  return stateDirIn(env, DATA_DIR, `g${ACCEPTOR_GROUP_ID}-a${ACCEPTOR_ID}`);
}

/**
 * The directory of a process's durable state from its environment: an acceptor's log
 * (`acceptorLogDirOf`) or a matchmaker's state (`DATA_DIR/<prefix>-m<id>`, the runtime's
 * `matchmakerStoreDir`); null for a stateless process.
 */
export function stateDirOf(env: Readonly<Record<string, string | undefined>>): string | null {
  const { DATA_DIR, MATCHMAKER_ID } = env;
  if (DATA_DIR !== undefined && MATCHMAKER_ID !== undefined)
    return stateDirIn(env, DATA_DIR, `m${MATCHMAKER_ID}`);
  return acceptorLogDirOf(env);
}

/**
 * Whether `dir` holds durable state: an acceptor log's segment (`<12 digits>.seg`) or state
 * file, or a matchmaker's state file. A missing or empty directory, or one with only a crash's
 * leftover temporary files, holds none.
 */
export function holdsDurableState(dir: string): boolean {
  if (!existsSync(dir)) return false;
  return readdirSync(dir).some(
    (name) => /^\d{12}\.seg$/.test(name) || name === 'state' || name === 'matchmaker',
  );
}

/** The roles whose instances come and go while the cluster serves (see `planAddedProcess`). */
export type StatelessRole = 'batcher' | 'proxy-leader' | 'unbatcher';
export const STATELESS_ROLES: readonly StatelessRole[] = ['batcher', 'proxy-leader', 'unbatcher'];

/** The ports each role listens on, in the order of its port table. */
const ROLE_PORTS: Readonly<
  Record<'acceptor' | 'matchmaker' | 'proposer' | StatelessRole, readonly PortName[]>
> = {
  acceptor: ['ACCEPTOR_PORT'],
  matchmaker: ['MATCHMAKER_PORT'],
  'proxy-leader': ['PROXY_LEADER_PORT', 'PROXY_LEADER_ACCEPTOR_PORT'],
  unbatcher: ['UNBATCHER_PORT'],
  proposer: ['PROPOSER_PORT', 'PROPOSER_REPLY_PORT', 'PROPOSER_ELECTION_PORT'],
  batcher: ['BATCHER_PORT'],
};

/** One role process: its name, ports from `placement`, and the environment of `roleEnv` plus the role's own. */
function roleProcess(
  o: ClusterShape,
  placement: Placement,
  name: string,
  role: keyof typeof ROLE_PORTS,
  env: Record<string, string> = {},
  restartEnv?: Readonly<Record<string, string>>,
): ProcessSpec {
  const metricsPort = placement.metricsPort();
  const portEnv = ROLE_PORTS[role].map((p) => [p, placement.port(p)] as const);
  return {
    name,
    role,
    env: {
      ...roleEnv({
        annaRouting: placement.annaRouting,
        keyPrefix: o.keyPrefix,
        host: placement.host,
        metricsPort,
        directoryPollMs: o.directoryPollMs,
        logLevel: o.logLevel,
        instance: name,
      }),
      F: String(o.f),
      ...o.extraEnv,
      ...o.roleExtraEnv?.[role],
      ...Object.fromEntries(portEnv.map(([k, v]) => [k, String(v)])),
      ...env,
    },
    ports: portEnv.map(([, v]) => v),
    metricsPort,
    restart: true,
    ...(restartEnv === undefined ? {} : { restartEnv }),
  };
}

/** The environment only `role` needs beyond the common one. */
function statelessEnv(o: ClusterShape, role: StatelessRole): Record<string, string> {
  return role === 'batcher' ? { BATCH_SIZE: String(o.batchSize) } : {};
}

/**
 * The role processes in the seed's launch order: acceptors, the 2f+1 matchmakers,
 * proxy leaders and unbatchers, proposers, batchers.
 */
function roleProcesses(o: ClusterShape, placement: Placement): ProcessSpec[] {
  const processes: ProcessSpec[] = [];
  for (let g = 0; g < o.groups; g++) {
    for (let a = 0; a < 2 * o.f + 1; a++) processes.push(acceptorProcess(o, placement, g, a));
  }
  // The first start writes the genesis state; every restart must find it (restartEnv).
  for (let m = 0; m < 2 * o.f + 1; m++) processes.push(matchmakerProcess(o, placement, m, 'new'));
  const stateless = (role: StatelessRole, count: number) => {
    for (let i = 0; i < count; i++)
      processes.push(roleProcess(o, placement, `${role}-${i}`, role, statelessEnv(o, role)));
  };
  stateless('proxy-leader', o.proxyLeaders);
  stateless('unbatcher', o.unbatchers);
  for (let i = 0; i < o.proposers; i++) {
    processes.push(
      roleProcess(o, placement, `proposer-${i}`, 'proposer', { ACCEPTOR_GROUPS: String(o.groups) }),
    );
  }
  stateless('batcher', o.batchers);
  return processes;
}

/**
 * DATA_FSYNC of a stateful process: said here, not only left to the apps' default, so it shows in
 * every stateful process's environment (the EC2 env file included); `extraEnv` may turn it off.
 */
function dataFsyncOf(o: ClusterShape, role: 'acceptor' | 'matchmaker'): string {
  return o.roleExtraEnv?.[role]?.DATA_FSYNC ?? o.extraEnv?.DATA_FSYNC ?? 'true';
}

/** The process name of acceptor `acceptorId` of group `groupId`: `acceptor-g<group>-a<id>`. */
export function acceptorName(groupId: number, acceptorId: number): string {
  return `acceptor-g${groupId}-a${acceptorId}`;
}

/** `acceptor-g<group>-a<id>` (see `acceptorName`) → its identity, or null for another name. */
export function parseAcceptorName(name: string): { groupId: number; acceptorId: number } | null {
  const match = /^acceptor-g(\d+)-a(\d+)$/.exec(name);
  return match === null ? null : { groupId: Number(match[1]), acceptorId: Number(match[2]) };
}

/** The process name of matchmaker `matchmakerId`: `matchmaker-<id>`. */
export function matchmakerName(matchmakerId: number): string {
  return `matchmaker-${matchmakerId}`;
}

/** `matchmaker-<id>` (see `matchmakerName`) → its id, or null for another name. */
export function parseMatchmakerName(name: string): number | null {
  const match = /^matchmaker-(\d+)$/.exec(name);
  return match === null ? null : Number(match[1]);
}

/**
 * Matchmaker `matchmakerId`: `new` for one of the cluster's first set (it writes the genesis
 * state), `replacement` for one added to replace another (no state until a matchmaker change
 * bootstraps it); `existing` on every restart.
 */
function matchmakerProcess(
  o: ClusterShape,
  placement: Placement,
  matchmakerId: number,
  state: 'new' | 'replacement',
): ProcessSpec {
  return roleProcess(
    o,
    placement,
    matchmakerName(matchmakerId),
    'matchmaker',
    {
      MATCHMAKER_ID: String(matchmakerId),
      ACCEPTOR_GROUPS: String(o.groups),
      DATA_DIR: placement.dataDir,
      DATA_FSYNC: dataFsyncOf(o, 'matchmaker'),
      [MATCHMAKER_STATE]: state,
    },
    MATCHMAKER_RESTART_ENV,
  );
}

/**
 * One more matchmaker for a running one-host cluster, to replace another: a new id, no state
 * (MATCHMAKER_STATE=replacement) until the leader's matchmaker change bootstraps it, on the ports
 * `nextPort` and `nextMetricsPort` hand out.
 */
export function planAddedMatchmaker(
  o: TopologyOptions,
  annaRouting: string,
  matchmakerId: number,
  nextPort: () => number,
  nextMetricsPort: () => number,
): ProcessSpec {
  return matchmakerProcess(
    o,
    { port: nextPort, metricsPort: nextMetricsPort, annaRouting, host: o.host, dataDir: o.dataDir },
    matchmakerId,
    'replacement',
  );
}

/**
 * One more matchmaker for a cluster with a host per process (EC2), to replace another: a new id,
 * no state (MATCHMAKER_STATE=replacement) until the leader's matchmaker change bootstraps it, the
 * role's default ports, as `planHostPerProcess`.
 */
export function planHostPerProcessMatchmaker(o: HostPerProcessOptions, matchmakerId: number): ProcessSpec {
  return matchmakerProcess(o, hostPerProcessPlacement(o), matchmakerId, 'replacement');
}

/** Acceptor `acceptorId` of group `groupId` (see `acceptorName`), with a new log. */
function acceptorProcess(
  o: ClusterShape,
  placement: Placement,
  groupId: number,
  acceptorId: number,
): ProcessSpec {
  return roleProcess(
    o,
    placement,
    acceptorName(groupId, acceptorId),
    'acceptor',
    {
      ACCEPTOR_GROUP_ID: String(groupId),
      ACCEPTOR_ID: String(acceptorId),
      DATA_DIR: placement.dataDir,
      DATA_FSYNC: dataFsyncOf(o, 'acceptor'),
      // The first start creates the log; every restart must find it (restartEnv).
      [ACCEPTOR_LOG_STATE]: 'new',
    },
    ACCEPTOR_RESTART_ENV,
  );
}

/**
 * One more acceptor for a running one-host cluster (a new group's, or one that replaces another
 * with a new id): a new empty log, on the ports `nextPort` and `nextMetricsPort` hand out.
 */
export function planAddedAcceptor(
  o: TopologyOptions,
  annaRouting: string,
  groupId: number,
  acceptorId: number,
  nextPort: () => number,
  nextMetricsPort: () => number,
): ProcessSpec {
  return acceptorProcess(
    o,
    { port: nextPort, metricsPort: nextMetricsPort, annaRouting, host: o.host, dataDir: o.dataDir },
    groupId,
    acceptorId,
  );
}

/**
 * One more acceptor for a cluster with a host per process (EC2): a new group's, or one that
 * replaces another with a new id; a new empty log, the role's default ports, as `planHostPerProcess`.
 */
export function planHostPerProcessAcceptor(
  o: HostPerProcessOptions,
  groupId: number,
  acceptorId: number,
): ProcessSpec {
  return acceptorProcess(o, hostPerProcessPlacement(o), groupId, acceptorId);
}

/**
 * One more process of a stateless role for a running one-host cluster, named `<role>-<index>`,
 * on the ports `nextPort` and `nextMetricsPort` hand out (the caller knows which are free).
 */
export function planAddedProcess(
  o: TopologyOptions,
  annaRouting: string,
  role: StatelessRole,
  index: number,
  nextPort: () => number,
  nextMetricsPort: () => number,
): ProcessSpec {
  return roleProcess(
    o,
    {
      port: nextPort,
      metricsPort: nextMetricsPort,
      annaRouting,
      host: o.host,
      dataDir: o.dataDir,
    },
    `${role}-${index}`,
    role,
    statelessEnv(o, role),
  );
}

/** Every port `spec` listens on, its metrics port included. */
export function specPorts(spec: ProcessSpec): number[] {
  return spec.metricsPort === null ? [...spec.ports] : [...spec.ports, spec.metricsPort];
}

/** The next free ports after those of a one-host cluster's `processes`, for load generators. */
export function clientPorts(
  processes: readonly ProcessSpec[],
  index: number,
): { port: number; metricsPort: number } {
  const last = Math.max(...processes.flatMap((p) => p.ports));
  const lastMetrics = Math.max(...processes.map((p) => p.metricsPort ?? 0));
  return { port: last + 1 + index, metricsPort: lastMetrics + 1 + index };
}
