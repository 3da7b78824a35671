/**
 * The status page's data for a local cluster, from what its processes and the autoscaler already
 * export: the supervisor's phases, the proposers', unbatchers' and load generators' /metrics,
 * the directory's configuration and matchmaker set, and the autoscaler's timeline file.
 */
import { acceptorName } from '@paxos/launcher';
import { findSample, type Sample } from '@paxos/metrics';
import {
  type LatencyBucket,
  type ProcessView,
  RateWindow,
  readDecisions,
  type StatusSnapshot,
  type StatusSource,
} from '@paxos/status-page';
import { localTimelineFile } from './autoscale.ts';
import { isLeader, type LocalCluster, scrapeMetrics } from './cluster.ts';
import { readLocalConfiguration, readLocalMatchmakers } from './reconfigure.ts';

/**
 * A process the supervisor restarted is shown `restarting` at least this long, even if it is
 * ready sooner: the page polls once a second, and a restart that takes less would not be seen.
 */
const RESTART_SHOWN_MS = 3000;
/** Roles whose metrics the page reads: leadership, commands chosen, client latency. */
const SCRAPED_ROLES = new Set(['proposer', 'unbatcher', 'client']);
/** The directory is read at most this often (two reads, each a client of its own). */
const DIRECTORY_EVERY_MS = 2000;
const DECISIONS_SHOWN = 30;

/**
 * A source for `statusPageHandler`. A process the supervisor brought back is shown `restarting`
 * until it is ready again, and for at least `RESTART_SHOWN_MS` after its restart count rose (the
 * supervisor's own `restarting` lasts only its restart delay).
 */
export function localStatusSource(cluster: LocalCluster, title: string): StatusSource {
  const rates = new RateWindow(5000);
  /** Per process: the restart count last seen, and when it last rose. */
  const restartsSeen = new Map<string, { count: number; at: number }>();
  const restartedLately = (name: string, restarts: number, now: number): boolean => {
    const seen = restartsSeen.get(name);
    if (seen === undefined || restarts !== seen.count)
      restartsSeen.set(name, { count: restarts, at: seen === undefined ? Number.NEGATIVE_INFINITY : now });
    return now - (restartsSeen.get(name)?.at ?? Number.NEGATIVE_INFINITY) < RESTART_SHOWN_MS;
  };
  let directory: { at: number; value: Pick<StatusSnapshot, 'acceptorGroups' | 'matchmakers'> } | null = null;
  let directoryProblem: string | null = null;
  return async () => {
    const problems: string[] = [];
    const instances = cluster.instances();
    const [phases, scraped] = await Promise.all([
      cluster.phases(),
      Promise.all(
        instances
          .filter((i) => SCRAPED_ROLES.has(i.role) && i.state === 'running' && i.spec.metricsPort !== null)
          .map(async (i) => ({
            name: i.name,
            role: i.role,
            metrics: await scrapeMetrics(cluster.topology.host, i.spec.metricsPort as number, 800).catch(
              () => null,
            ),
          })),
      ),
    ]);
    const seenAt = performance.now();
    const processes: ProcessView[] = phases.map((p) => ({
      name: p.name,
      role: p.role,
      phase:
        restartedLately(p.name, p.restarts, seenAt) && p.phase !== 'draining' && p.phase !== 'stopped'
          ? 'restarting'
          : p.phase === 'starting' && p.restarts > 0
            ? 'restarting'
            : p.phase,
      pid: p.pid,
      restarts: p.restarts,
    }));
    const leaderProcess = scraped.find(
      (s) => s.role === 'proposer' && s.metrics !== null && isLeader(s.metrics),
    );
    const leaderMetrics = leaderProcess?.metrics ?? null;

    const now = performance.now();
    if (directory === null || now - directory.at >= DIRECTORY_EVERY_MS) {
      const [configuration, matchmakers] = await Promise.all([
        readLocalConfiguration(cluster).catch((err: Error) => err),
        readLocalMatchmakers(cluster).catch((err: Error) => err),
      ]);
      directoryProblem =
        configuration instanceof Error ? `the directory did not answer (${configuration.message})` : null;
      directory = {
        at: now,
        value: {
          acceptorGroups:
            configuration instanceof Error
              ? null
              : {
                  version: configuration.version,
                  servedVersion: null,
                  groups: configuration.groups.map((g) => ({
                    id: g.groupId,
                    acceptors: g.acceptorIds.map((a) => acceptorName(g.groupId, a)),
                  })),
                },
          matchmakers: matchmakers instanceof Error ? null : matchmakers,
        },
      };
    }
    if (directoryProblem !== null) problems.push(directoryProblem);
    const served =
      leaderMetrics === null ? undefined : findSample(leaderMetrics, 'paxos_configuration_version');
    const acceptorGroups =
      directory.value.acceptorGroups === null
        ? null
        : { ...directory.value.acceptorGroups, servedVersion: served ?? null };

    const { commandsPerS, p50Ms, p99Ms } = rates.push({
      at: now,
      commands: new Map(
        scraped.flatMap((s) =>
          s.role === 'unbatcher' && s.metrics !== null
            ? [[s.name, findSample(s.metrics, 'commands_chosen') ?? 0] as const]
            : [],
        ),
      ),
      latency: new Map(
        scraped.flatMap((s) =>
          s.role === 'client' && s.metrics !== null
            ? [[s.name, latencyBuckets(s.metrics.get('client_latency_seconds_bucket') ?? [])] as const]
            : [],
        ),
      ),
    });

    const round = leaderMetrics === null ? undefined : findSample(leaderMetrics, 'paxos_ballot_round');
    const proposerId =
      leaderMetrics === null ? undefined : findSample(leaderMetrics, 'paxos_ballot_proposer_id');
    const snapshot: StatusSnapshot = {
      at: Date.now(),
      title,
      leader:
        leaderProcess === undefined
          ? null
          : {
              name: leaderProcess.name,
              ballot: round === undefined ? null : { round, proposerId: proposerId ?? null },
            },
      processes,
      acceptorGroups,
      matchmakers: directory.value.matchmakers,
      commandsPerS,
      p50Ms,
      p99Ms,
      chosenWatermark:
        leaderMetrics === null ? null : (findSample(leaderMetrics, 'chosen_watermark') ?? null),
      decisions: readDecisions(localTimelineFile(cluster), DECISIONS_SHOWN),
      problems,
    };
    return snapshot;
  };
}

/** A Prometheus histogram's `_bucket` samples (seconds) as cumulative buckets in ms. */
function latencyBuckets(samples: readonly Sample[]): LatencyBucket[] {
  return samples.map((s) => ({
    le: s.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels.le) * 1000,
    count: s.value,
  }));
}
