/**
 * Reconfiguring a running local cluster's acceptor groups and matchmakers (issue 16): `pnpm
 * cluster reconfigure --groups N`, `pnpm cluster replace <acceptor>` and `pnpm cluster replace
 * matchmaker-N`. The protocol is the leader's (core's
 * Proposer, through the matchmakers); this is the operator's part: start the new acceptors,
 * write the target configuration to the directory, wait until the leader serves it and the
 * acceptors it drops have retired, then stop those (their logs stay in DATA_DIR).
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Membership } from '@paxos/anna-client';
import { type ConfigSpec, type MatchmakerEpoch, planConfigChange } from '@paxos/core';
import {
  acceptorName,
  changeFor,
  droppedAcceptors,
  matchmakerName,
  parseMatchmakerName,
  type ReconfigureRequest,
} from '@paxos/launcher';
import {
  currentMatchmakerTarget,
  genesisSpec,
  liveById,
  publishedMatchmakers,
  readMatchmakerEpoch,
  readTargetConfiguration,
  writeTargetConfiguration,
  writeTargetMatchmakers,
} from '@paxos/runtime';
import {
  isLeader,
  type LocalCluster,
  probeReady,
  saveConfiguration,
  saveMatchmakers,
  sleep,
} from './cluster.ts';

export interface ReconfigureResult {
  /** The target configuration written (and served). */
  readonly target: ConfigSpec;
  /** Acceptor processes started for it. */
  readonly started: readonly string[];
  /** Acceptor processes it dropped: retired, then stopped (their logs are kept). */
  readonly retired: readonly string[];
  /** Starting the new acceptors until each was ready and settled, before the target was written (ms). */
  readonly prepareMs: number;
  /** From writing the target to a leader serving it (ms). */
  readonly serveMs: number;
  /** From writing the target to the last dropped acceptor retired and stopped (ms). */
  readonly retireMs: number;
  /** A matchmaker replacement: the matchmaker ids the cluster uses now. */
  readonly matchmakers?: readonly number[];
}

/**
 * The acceptors and matchmakers whose durable state is in `dataDir` (`<prefix>-g<group>-a<id>`,
 * `<prefix>-m<id>`), as process names: those retired or replaced included, whose ids are never
 * used again.
 */
function storedProcesses(dataDir: string): string[] {
  if (!existsSync(dataDir)) return [];
  return readdirSync(dataDir).flatMap((entry) => {
    const acceptor = /-g(\d+)-a(\d+)$/.exec(entry);
    if (acceptor !== null) return [acceptorName(Number(acceptor[1]), Number(acceptor[2]))];
    const matchmaker = /-m(\d+)$/.exec(entry);
    return matchmaker === null ? [] : [matchmakerName(Number(matchmaker[1]))];
  });
}

/** The configuration the cluster is asked to serve: the directory's target, or the genesis one. */
async function targetOf(cluster: LocalCluster, membership: Membership): Promise<ConfigSpec> {
  return (
    (await readTargetConfiguration(membership)) ?? genesisSpec(cluster.topology.f, cluster.topology.groups)
  );
}

/**
 * The configuration the cluster serves or moves to (as `reconfigureLocal` starts from): the
 * directory's target, else the one it formed with (version 0). With a directory client of its own.
 */
export async function readLocalConfiguration(cluster: LocalCluster): Promise<ConfigSpec> {
  const client = await cluster.directoryClient(500, 2);
  try {
    return await targetOf(cluster, new Membership(client, { keyPrefix: cluster.topology.keyPrefix }));
  } finally {
    await client.close();
  }
}

/**
 * The matchmaker set proposers use: its epoch and members by name (the set a proposer published,
 * else the first 2f+1 at epoch 0). With a directory client of its own.
 */
export async function readLocalMatchmakers(
  cluster: LocalCluster,
): Promise<{ readonly epoch: number; readonly names: readonly string[] }> {
  const client = await cluster.directoryClient(500, 2);
  try {
    const membership = new Membership(client, { keyPrefix: cluster.topology.keyPrefix });
    const using = await readMatchmakerEpoch(membership);
    if (using === null)
      return {
        epoch: 0,
        names: Array.from({ length: 2 * cluster.topology.f + 1 }, (_, id) => matchmakerName(id)),
      };
    const idOf = new Map(
      [...(await liveById(membership, 'Matchmakers'))].map(([id, address]) => [address, id]),
    );
    return {
      epoch: using.epoch,
      names: using.addresses.map((a) => {
        const id = idOf.get(a);
        return id === undefined ? a : matchmakerName(id);
      }),
    };
  } finally {
    await client.close();
  }
}

/** Runs one reconfiguration; concurrent ones (and scale requests) wait for each other. */
export function reconfigureLocal(
  cluster: LocalCluster,
  request: ReconfigureRequest,
  options: { timeoutMs?: number; settleMs?: number } = {},
): Promise<ReconfigureResult> {
  return cluster.exclusive(() =>
    reconfigure(cluster, request, options.timeoutMs ?? 60_000, options.settleMs ?? NEW_ACCEPTOR_SETTLE_MS),
  );
}

/** How long new acceptors have been ready before the target that uses them is written. */
export const NEW_ACCEPTOR_SETTLE_MS = 1000;

async function reconfigure(
  cluster: LocalCluster,
  request: ReconfigureRequest,
  timeoutMs: number,
  settleMs: number,
): Promise<ReconfigureResult> {
  if ('replace' in request && parseMatchmakerName(request.replace) !== null)
    return replaceMatchmaker(cluster, request.replace, timeoutMs, settleMs);
  const client = await cluster.directoryClient(500, 10);
  try {
    const membership = new Membership(client, { keyPrefix: cluster.topology.keyPrefix });
    const current = await targetOf(cluster, membership);
    // Ids are never reused, those of retired acceptors (their logs stay in the data directory) included.
    const acceptors = [
      ...cluster.processes.filter((p) => p.role === 'acceptor').map((p) => p.name),
      ...storedProcesses(path.join(cluster.workDir, 'data')),
    ];
    const plan = planConfigChange(current, changeFor(request, current, acceptors));
    const began = performance.now();
    const deadline = began + timeoutMs;

    const started: string[] = [];
    for (const { groupId, acceptorId } of plan.start)
      started.push((await cluster.addAcceptor(groupId, acceptorId)).name);
    for (const name of started) await until(deadline, `${name} ready`, () => ready(cluster, name));
    // A process that has just answered /readyz is still finishing its own start-up; on a small
    // machine that slows every other process once it starts serving (a stall of 0.7 s was seen
    // when a group began serving at once). The target waits a little; time to serve does not.
    if (started.length > 0) await sleep(settleMs);

    const written = performance.now();
    await writeTargetConfiguration(membership, plan.target);
    await until(deadline, `a leader serving configuration version ${plan.target.version}`, () =>
      serving(cluster, plan.target.version),
    );
    const serveMs = performance.now() - written;

    const dropped = droppedAcceptors(current, plan.target);
    // An acceptor whose process is gone (its host lost) cannot answer its Retire; the leader gives up on it.
    const running = dropped.filter((name) =>
      cluster.instances().some((i) => i.name === name && i.state !== 'stopped'),
    );
    await until(deadline, `${running.join(', ')} retired`, async () =>
      (await Promise.all(running.map((name) => retired(cluster, name)))).every(Boolean),
    );
    await Promise.all(running.map((name) => cluster.stop(name)));
    saveConfiguration(cluster.workDir, plan.target);
    return {
      target: plan.target,
      started,
      retired: dropped,
      prepareMs: written - began,
      serveMs,
      retireMs: performance.now() - written,
    };
  } finally {
    await client.close();
  }
}

/**
 * Replaces matchmaker `name` while the cluster serves (`cluster replace matchmaker-N`): a new
 * matchmaker (a new id, no state) starts, the target set is written, and once a proposer uses the
 * new set (the leader stopped the old one, bootstrapped the new one and had the old one choose it)
 * the replaced process is stopped; its state stays in the data directory.
 */
async function replaceMatchmaker(
  cluster: LocalCluster,
  name: string,
  timeoutMs: number,
  settleMs: number,
): Promise<ReconfigureResult> {
  const oldId = parseMatchmakerName(name) as number;
  const client = await cluster.directoryClient(500, 10);
  try {
    const membership = new Membership(client, { keyPrefix: cluster.topology.keyPrefix });
    const current = await currentMatchmakerTarget(membership, cluster.topology.f);
    if (!current.ids.includes(oldId))
      throw new Error(
        `${name} is not one of the matchmakers the cluster uses (${current.ids.map(matchmakerName).join(', ')})`,
      );
    // Ids are never reused, those of replaced matchmakers (their state stays in the data directory) included.
    const ever = [
      ...current.ids,
      ...cluster.processes.flatMap((p) => parseMatchmakerName(p.name) ?? []),
      ...storedProcesses(path.join(cluster.workDir, 'data')).flatMap((n) => parseMatchmakerName(n) ?? []),
    ];
    const newId = Math.max(...ever) + 1;
    const began = performance.now();
    const deadline = began + timeoutMs;
    const added = await cluster.addMatchmaker(newId);
    await until(deadline, `${added.name} ready`, () => ready(cluster, added.name));
    await sleep(settleMs);

    const target = {
      version: current.version + 1,
      ids: current.ids.map((id) => (id === oldId ? newId : id)),
    };
    // The members' addresses are read before the write and again only while one is missing: each
    // check is then one directory read, not a membership scan every 20 ms while the cluster serves.
    let byId = await liveById(membership, 'Matchmakers');
    const written = performance.now();
    await writeTargetMatchmakers(membership, target);
    const inUse: { epoch: MatchmakerEpoch | null } = { epoch: null };
    await until(deadline, `a proposer using matchmakers ${target.ids.join(', ')}`, async () => {
      if (target.ids.some((id) => !byId.has(id))) byId = await liveById(membership, 'Matchmakers');
      const { published, isTarget } = await publishedMatchmakers(membership, target, byId);
      if (isTarget) inUse.epoch = published;
      return isTarget;
    });
    const serveMs = performance.now() - written;
    if (cluster.instances().some((i) => i.name === name && i.state !== 'stopped')) await cluster.stop(name);
    saveMatchmakers(cluster.workDir, {
      target,
      // A published set that lists the target's members is not null.
      epoch: inUse.epoch as MatchmakerEpoch,
      ports: target.ids.map((id) => {
        const spec = cluster.spec(matchmakerName(id));
        return { id, port: spec.ports[0] as number, metricsPort: spec.metricsPort };
      }),
    });
    return {
      target: await targetOf(cluster, membership),
      started: [added.name],
      retired: [name],
      prepareMs: written - began,
      serveMs,
      retireMs: performance.now() - written,
      matchmakers: target.ids,
    };
  } finally {
    await client.close();
  }
}

async function until(deadline: number, what: string, check: () => Promise<boolean>): Promise<void> {
  while (!(await check().catch(() => false))) {
    if (performance.now() > deadline) throw new Error(`reconfiguration timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function ready(cluster: LocalCluster, name: string): Promise<boolean> {
  const port = cluster.spec(name).metricsPort;
  return port !== null && (await probeReady(cluster.topology.host ?? '127.0.0.1', port, 300));
}

/**
 * The version of the configuration a leading proposer's ballot uses (its
 * `paxos_configuration_version`; the highest, if a deposed leader has not noticed yet), or null
 * when no leader answers.
 */
export async function servedVersion(cluster: LocalCluster): Promise<number | null> {
  let served: number | null = null;
  for (const spec of cluster.processes.filter((p) => p.role === 'proposer')) {
    const metrics = await cluster.scrape(spec.name).catch(() => null);
    if (metrics === null || !isLeader(metrics)) continue;
    const version = gauge(metrics, 'paxos_configuration_version');
    if (!Number.isNaN(version)) served = Math.max(served ?? version, version);
  }
  return served;
}

/** Whether a proposer leads in a ballot whose configuration has at least `version`. */
async function serving(cluster: LocalCluster, version: number): Promise<boolean> {
  return ((await servedVersion(cluster)) ?? -1) >= version;
}

async function retired(cluster: LocalCluster, name: string): Promise<boolean> {
  return gauge(await cluster.scrape(name), 'paxos_acceptor_retired') === 1;
}

function gauge(metrics: Awaited<ReturnType<LocalCluster['scrape']>>, name: string): number {
  return metrics.get(name)?.[0]?.value ?? Number.NaN;
}
