import { instantQuery } from '@paxos/autoscaler';
import {
  annaRoutingAt,
  type ClusterShape,
  hostPerProcessDirectory,
  type ProcessSpec,
  planHostPerProcess,
  planHostPerProcessAcceptor,
  planHostPerProcessMatchmaker,
  type RoleName,
} from '@paxos/launcher';
import { type ClusterInstance, type Ec2Launcher, TAGS } from './ec2.ts';
import { Ec2LaunchError } from './errors.ts';

/** Where acceptors keep their logs and matchmakers their state on an instance (systemd's StateDirectory). */
export const INSTANCE_DATA_DIR = '/var/lib/paxos';

/** The settings of a cluster on EC2: its shape and where its directory is. */
export interface AwsClusterSettings extends ClusterShape {
  readonly annaRouting: string;
  /**
   * The S3 bucket the cluster's acceptors and matchmakers archive their DATA_DIR to (`up
   * --s3-bucket`), so that later launches (`scale acceptor-groups`, `replace`, the autoscaler)
   * archive too without the flag; the launcher's own bucket (the flag, AWS_S3_BUCKET) overrides it.
   */
  readonly archiveBucket?: string;
}

/**
 * Launch stages in the seed's order: the directory must be reachable first, servers register
 * before the processes that connect to them (proposers wait for the 2f+1 matchmakers, which start
 * beside the acceptors). `down` goes backwards.
 */
export const LAUNCH_STAGES: readonly (readonly RoleName[])[] = [
  ['directory'],
  ['acceptor', 'matchmaker'],
  ['proxy-leader', 'unbatcher'],
  ['proposer'],
  ['batcher'],
  ['client', 'mock'],
];

/** The roles `scale` changes by count (acceptor groups change by reconfiguration). */
export const SCALABLE_ROLES: readonly RoleName[] = ['proposer', 'batcher', 'proxy-leader', 'unbatcher'];

/** Why `role` cannot be scaled by count, in one line that says what to do instead; null if it can. */
export function scaleRefusal(role: string): string | null {
  if (SCALABLE_ROLES.includes(role as RoleName)) return null;
  if (role === 'acceptor')
    return 'acceptors do not scale by count: change the number of acceptor groups with `scale acceptor-groups <N>`, or replace one acceptor with `replace <acceptor>`';
  if (role === 'directory')
    return 'the directory does not scale by count: it is one process; use `up` for a new cluster';
  if (role === 'matchmaker')
    return 'matchmakers do not scale by count: the set is 2f+1; replace one with `replace matchmaker-<id>`, or for another size `down` and `up --f <f>` a new cluster';
  return `role ${role} cannot be scaled: expected one of ${SCALABLE_ROLES.join(', ')}`;
}

/** The settings, as one tag value on every instance, so `scale` starts processes like the running ones. */
export function encodeSettings(s: AwsClusterSettings): string {
  return [
    `f=${s.f}`,
    `groups=${s.groups}`,
    `batch=${s.batchSize}`,
    `prefix=${s.keyPrefix}`,
    `poll=${s.directoryPollMs}`,
    `log=${s.logLevel}`,
    `anna=${s.annaRouting}`,
    ...(s.archiveBucket === undefined ? [] : [`s3=${s.archiveBucket}`]),
  ].join(' ');
}

export function decodeSettings(tag: string, counts: Record<string, number>): AwsClusterSettings {
  const fields = Object.fromEntries(
    tag.split(' ').map((kv) => {
      const at = kv.indexOf('=');
      return [kv.slice(0, at), kv.slice(at + 1)];
    }),
  );
  const int = (key: string) => {
    const n = Number(fields[key]);
    if (!Number.isInteger(n)) {
      throw new Ec2LaunchError(`tag ${TAGS.settings}="${tag}" has no integer ${key}: was it edited?`, 'Tags');
    }
    return n;
  };
  return {
    f: int('f'),
    groups: int('groups'),
    batchSize: int('batch'),
    keyPrefix: fields.prefix ?? '',
    directoryPollMs: int('poll'),
    logLevel: fields.log ?? 'info',
    annaRouting: fields.anna ?? '',
    ...(fields.s3 === undefined || fields.s3 === '' ? {} : { archiveBucket: fields.s3 }),
    proposers: counts.proposer ?? 0,
    batchers: counts.batcher ?? 0,
    proxyLeaders: counts['proxy-leader'] ?? 0,
    unbatchers: counts.unbatcher ?? 0,
  };
}

export interface AwsClusterOptions {
  readonly log: (line: string) => void;
  /** How long to wait for a stage's instances to be running. */
  readonly waitTimeoutMs?: number;
  readonly pollMs?: number;
  /** Pause between stages of `down`, so the roles stopped first drain before the next go. */
  readonly drainMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** How long `up` waits for a stage's processes to be ready once they run (default 5 minutes). */
  readonly readyTimeoutMs?: number;
}

/**
 * Readiness from a Prometheus that scrapes the cluster with infra/prometheus/prometheus-ec2.yml:
 * `paxos_ready{job, cluster}` by `instance` (the EC2 instance id); 1 is ready. Prometheus keeps
 * no sample of a target it cannot scrape, so a process not yet serving is simply absent.
 */
export function prometheusReadiness(prometheusUrl: string, cluster: string, job = 'paxos'): Readiness {
  const query = `paxos_ready{job=${JSON.stringify(job)},cluster=${JSON.stringify(cluster)}}`;
  return async () => {
    const values = await instantQuery(prometheusUrl, query, { by: 'instance' });
    return new Map([...values].map(([id, v]) => [id, v === 1]));
  };
}

/** Whether each instance's process is ready, by instance id (absent: not scraped yet). */
export type Readiness = (ids: readonly string[]) => Promise<ReadonlyMap<string, boolean>>;

export interface UpOptions {
  /**
   * With it, `up` waits for each stage's processes to be ready, not only running (showing
   * progress); without it, `up` says it waits for `running` only. See {@link prometheusReadiness}.
   */
  readonly readiness?: Readiness;
}

export interface LaunchOptions {
  /**
   * Wait until the new instances are running (the default). The autoscaler passes false: a
   * period must not be held for the minute or two an instance takes to boot, and the next
   * periods see them as starting anyway.
   */
  readonly wait?: boolean;
}

/** `up`, `scale`, `status` and `down` of a whole cluster on EC2, over an Ec2Launcher. */
export class AwsCluster {
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    readonly launcher: Ec2Launcher,
    private readonly options: AwsClusterOptions,
  ) {
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /**
   * Launches the cluster stage by stage, each stage running before the next starts. Without
   * `annaRouting` it first launches a directory instance and uses its private address. The
   * acceptors' stage also has the 2f+1 matchmakers (`matchmaker-<id>`, MATCHMAKER_STATE=new on
   * the first boot, then existing: see renderUserData).
   */
  async up(
    shape: ClusterShape & { annaRouting?: string },
    options: UpOptions = {},
  ): Promise<ClusterInstance[]> {
    const { readiness } = options;
    this.launcher.assertCanLaunch();
    const existing = await this.launcher.list();
    if (existing.length > 0) {
      throw new Ec2LaunchError(
        `cluster ${this.launcher.config.cluster} already has ${existing.length} instances: use \`scale\` to change it or \`down\` first`,
        'ClusterExists',
      );
    }
    const started: ClusterInstance[] = [];
    if (readiness === undefined) {
      this.options.log(
        'no --prometheus-url: waiting for each stage to be running, not for its processes to be ready',
      );
    }
    try {
      let annaRouting = shape.annaRouting;
      if (annaRouting === undefined) {
        const [directory] = await this.stage([hostPerProcessDirectory()], null, { readiness });
        started.push(directory as ClusterInstance);
        annaRouting = annaRoutingAt(directory?.address ?? '');
        this.options.log(`directory at ${annaRouting}`);
      }
      const archiveBucket = this.launcher.config.archiveBucket;
      const settings: AwsClusterSettings = {
        ...shape,
        annaRouting,
        ...(archiveBucket === undefined ? {} : { archiveBucket }),
      };
      const plan = planHostPerProcess({ ...settings, dataDir: INSTANCE_DATA_DIR });
      for (const roles of LAUNCH_STAGES.slice(1)) {
        const specs = plan.filter((p) => roles.includes(p.role));
        if (specs.length > 0) started.push(...(await this.stage(specs, settings, { readiness })));
      }
      return started;
    } catch (err) {
      if (started.length > 0 && err instanceof Error) {
        err.message += ` (${started.length} instances were started; \`down\` terminates them)`;
      }
      throw err;
    }
  }

  /**
   * Runs `count` instances of `role`: launches the missing ones with the running cluster's
   * settings, or terminates the highest-numbered ones (each drains on SIGTERM first). Returns the
   * instances it launched.
   */
  async scale(role: RoleName, count: number, options: LaunchOptions = {}): Promise<ClusterInstance[]> {
    this.checkScalable(role);
    const listed = await this.launcher.list();
    const settingsTag = this.settingsTag(listed);
    // Instances still shutting down from an earlier scale-in serve no more: scaling back out replaces them.
    const all = listed.filter(serving);
    const current = all.filter((i) => i.role === role).sort(byIndex);
    let launched: ClusterInstance[] = [];
    if (count > current.length) {
      const counts = countByRole(all);
      const settings = decodeSettings(settingsTag, { ...counts, [role]: count });
      const have = new Set(current.map((i) => i.name));
      const specs = planHostPerProcess({ ...settings, dataDir: INSTANCE_DATA_DIR }).filter(
        (p) => p.role === role && !have.has(p.name),
      );
      launched = await this.stage(specs.slice(0, count - current.length), settings, options);
    } else if (count < current.length) {
      const extra = current.slice(count);
      this.options.log(`terminating ${extra.map((i) => `${i.name} (${i.id})`).join(', ')}`);
      await this.launcher.terminate(extra.map((i) => i.id));
    }
    this.options.log(`${role}: ${current.length} → ${count}`);
    return launched;
  }

  /**
   * Launches `count` more instances of `role` with the running cluster's settings. Unlike
   * `scale`, each gets the lowest index no live instance of the role holds, one still shutting
   * down included: the autoscaler and Prometheus tell processes apart by name, so a new
   * `batcher-2` beside a draining one would merge their load and phases.
   */
  async add(role: RoleName, count: number, options: LaunchOptions = {}): Promise<ClusterInstance[]> {
    this.checkScalable(role);
    if (count <= 0) return [];
    const listed = await this.launcher.list();
    const settingsTag = this.settingsTag(listed);
    const taken = new Set(listed.filter((i) => i.role === role).map((i) => i.name));
    const names: string[] = [];
    for (let n = 0; names.length < count; n++) if (!taken.has(`${role}-${n}`)) names.push(`${role}-${n}`);
    const highest = Math.max(...names.map(indexOf));
    const settings = decodeSettings(settingsTag, {
      ...countByRole(listed.filter(serving)),
      [role]: highest + 1,
    });
    const specs = planHostPerProcess({ ...settings, dataDir: INSTANCE_DATA_DIR }).filter((p) =>
      names.includes(p.name),
    );
    return this.stage(specs, settings, options);
  }

  /**
   * Terminates the `count` highest-numbered pending or running instances of `role` and returns
   * them. EC2 shuts each down: systemd sends the role SIGTERM, so it leaves the directory and
   * drains before the machine goes (see renderUserData); meanwhile it lists as shutting-down.
   */
  async removeHighest(role: RoleName, count: number): Promise<ClusterInstance[]> {
    this.checkScalable(role);
    const current = (await this.launcher.list({ role })).filter(bootingOrRunning).sort(byIndex);
    const extra = current.slice(Math.max(0, current.length - count));
    if (extra.length === 0) return [];
    this.options.log(`terminating ${extra.map((i) => `${i.name} (${i.id})`).join(', ')}`);
    await this.launcher.terminate(extra.map((i) => i.id));
    return extra;
  }

  /**
   * Terminates the pending or running instance `name` (one that never became ready) and
   * launches another of its role in its place, under a fresh name (see `add`).
   */
  async replace(name: string, options: LaunchOptions = {}): Promise<ClusterInstance[]> {
    const stuck = (await this.launcher.list({ name })).filter(bootingOrRunning);
    const role = stuck[0]?.role;
    if (role === undefined) {
      throw new Ec2LaunchError(
        `no pending or running instance is named ${name} (gone already: the next period sees one fewer)`,
        'NotFound',
      );
    }
    this.checkScalable(role);
    // Terminate first: were the launch to fail (no capacity), the stuck instance would otherwise
    // stay, counted as starting, and block scale-in for good.
    this.options.log(`terminating ${stuck.map((i) => `${i.name} (${i.id})`).join(', ')}`);
    await this.launcher.terminate(stuck.map((i) => i.id));
    return this.add(role, 1, options);
  }

  /**
   * The running cluster's settings (the `paxos:settings` tag: f, the genesis groups, the key
   * prefix, the directory), with the counts of the serving instances in `listed`.
   */
  settingsOf(listed: readonly ClusterInstance[]): AwsClusterSettings {
    return decodeSettings(this.settingsTag(listed), countByRole(listed.filter(serving)));
  }

  /**
   * Launches one acceptor instance for each identity (a new group's, or a replacement with a new
   * id), with the environment `up` gives acceptors (ACCEPTOR_LOG_STATE=new on the first boot,
   * then existing) and the running cluster's settings. Ids are the caller's: never reused.
   */
  async launchAcceptors(
    identities: readonly { readonly groupId: number; readonly acceptorId: number }[],
    options: LaunchOptions = {},
  ): Promise<ClusterInstance[]> {
    this.launcher.assertCanLaunch();
    if (identities.length === 0) return [];
    const settings = this.settingsOf(await this.launcher.list());
    const specs = identities.map(({ groupId, acceptorId }) =>
      planHostPerProcessAcceptor({ ...settings, dataDir: INSTANCE_DATA_DIR }, groupId, acceptorId),
    );
    return this.stage(specs, settings, options);
  }

  /**
   * Launches one matchmaker instance with a new id (never reused: the caller's), to replace
   * another: the environment `up` gives matchmakers but MATCHMAKER_STATE=replacement (no state; it
   * answers nothing until the leader's matchmaker change bootstraps it), existing once its state
   * is there (see renderUserData).
   */
  async launchMatchmaker(matchmakerId: number, options: LaunchOptions = {}): Promise<ClusterInstance> {
    this.launcher.assertCanLaunch();
    const settings = this.settingsOf(await this.launcher.list());
    const spec = planHostPerProcessMatchmaker({ ...settings, dataDir: INSTANCE_DATA_DIR }, matchmakerId);
    const [launched] = await this.stage([spec], settings, options);
    return launched as ClusterInstance;
  }

  /** The cluster's instances in launch order. */
  async status(): Promise<ClusterInstance[]> {
    const all = await this.launcher.list();
    const rank = (i: ClusterInstance) => LAUNCH_STAGES.findIndex((s) => s.includes(i.role));
    return all.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name, 'en', { numeric: true }));
  }

  /** Terminates the cluster (or one role) in reverse launch order; returns how many instances. */
  async down(role?: RoleName): Promise<number> {
    const all = (await this.launcher.list()).filter(serving);
    const stages = [...LAUNCH_STAGES]
      .reverse()
      .map((roles) => all.filter((i) => roles.includes(i.role) && (role === undefined || i.role === role)));
    const nonEmpty = stages.filter((s) => s.length > 0);
    for (const [n, stage] of nonEmpty.entries()) {
      this.options.log(`terminating ${stage.map((i) => i.name).join(', ')}`);
      await this.launcher.terminate(stage.map((i) => i.id));
      if (n < nonEmpty.length - 1) await this.sleep(this.options.drainMs ?? 5000);
    }
    return nonEmpty.reduce((sum, s) => sum + s.length, 0);
  }

  private checkScalable(role: RoleName): void {
    const refusal = scaleRefusal(role);
    if (refusal !== null) throw new Ec2LaunchError(refusal, 'Unsupported');
    this.launcher.assertCanLaunch();
  }

  /** The running cluster's settings, from the tag every role instance carries. */
  private settingsTag(listed: readonly ClusterInstance[]): string {
    const tag = listed.find((i) => i.tags[TAGS.settings] !== undefined)?.tags[TAGS.settings];
    if (tag === undefined) {
      throw new Ec2LaunchError(
        `cluster ${this.launcher.config.cluster} has no instances: run \`up\` first`,
        'NoCluster',
      );
    }
    return tag;
  }

  private async stage(
    specs: readonly ProcessSpec[],
    settings: AwsClusterSettings | null,
    options: LaunchOptions & UpOptions = {},
  ): Promise<ClusterInstance[]> {
    // The launcher's bucket (the flag) overrides the one the cluster was launched with.
    const archiveBucket = this.launcher.config.archiveBucket ?? settings?.archiveBucket;
    const tags: Record<string, string> =
      settings === null
        ? {}
        : {
            [TAGS.settings]: encodeSettings({
              ...settings,
              ...(archiveBucket === undefined ? {} : { archiveBucket }),
            }),
          };
    this.options.log(`launching ${specs.map((s) => s.name).join(', ')}`);
    const launched = await this.launcher.launchAll(specs, tags, archiveBucket);
    const describe = (list: readonly ClusterInstance[]) =>
      list.map((i) => `${i.name} ${i.id} ${i.address ?? ''}`.trim()).join(', ');
    if (options.wait === false) {
      this.options.log(`launched: ${describe(launched)}`);
      return launched;
    }
    const running = await this.launcher.waitUntilRunning(
      launched.map((i) => i.id),
      { timeoutMs: this.options.waitTimeoutMs, pollMs: this.options.pollMs },
    );
    const byId = new Map(running.map((i) => [i.id, i]));
    const result = launched.map((i) => byId.get(i.id) ?? i);
    this.options.log(`running: ${describe(result)}`);
    if (options.readiness !== undefined) await this.waitUntilReady(result, options.readiness);
    return result;
  }

  /**
   * Waits until every instance's process is ready, one progress line each
   * time the count changes (`ready 2/5; waiting for proposer-0, proposer-1, …`), and fails
   * naming the ones still not ready after `readyTimeoutMs`. A Prometheus that does not answer
   * counts as nothing ready yet (said once).
   */
  private async waitUntilReady(instances: readonly ClusterInstance[], readiness: Readiness): Promise<void> {
    const { log } = this.options;
    if (instances.length === 0) return;
    const deadline = performance.now() + (this.options.readyTimeoutMs ?? 300_000);
    const pollMs = this.options.pollMs ?? 5000;
    let shown = -1;
    let problem: string | null = null;
    for (;;) {
      let ready = new Set<string>();
      try {
        const states = await readiness(instances.map((i) => i.id));
        ready = new Set(instances.filter((i) => states.get(i.id) === true).map((i) => i.id));
        problem = null;
      } catch (err) {
        const message = (err as Error).message;
        if (message !== problem) log(`cannot read readiness from Prometheus: ${message}`);
        problem = message;
      }
      const waiting = instances.filter((i) => !ready.has(i.id));
      if (ready.size !== shown) {
        shown = ready.size;
        const rest = waiting.length === 0 ? '' : `; waiting for ${waiting.map((i) => i.name).join(', ')}`;
        log(`ready ${ready.size}/${instances.length}${rest}`);
      }
      if (waiting.length === 0) return;
      if (performance.now() >= deadline) {
        throw new Ec2LaunchError(
          `not ready in time: ${waiting.map((i) => `${i.name} (${i.id})`).join(', ')} (their /readyz says why; the instance's journal has the role's log)`,
          'NotReady',
        );
      }
      await this.sleep(pollMs);
    }
  }
}

/** Not yet on its way out: `list` also reports instances that are shutting down. */
function serving(i: ClusterInstance): boolean {
  return i.ec2State !== 'shutting-down';
}

/** Launched and not yet told to go: what a scale-in may pick and a replacement may stop. */
function bootingOrRunning(i: ClusterInstance): boolean {
  return i.ec2State === 'pending' || i.ec2State === 'running';
}

function indexOf(name: string): number {
  return Number(/(\d+)$/.exec(name)?.[1] ?? 0);
}

function byIndex(a: ClusterInstance, b: ClusterInstance): number {
  return indexOf(a.name) - indexOf(b.name);
}

/** Instances per role, in the order roles first appear. */
export function countByRole(all: readonly ClusterInstance[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const i of all) counts[i.role] = (counts[i.role] ?? 0) + 1;
  return counts;
}
