/**
 * A CPU quota per process through Linux cgroups, so that processes sharing one machine behave
 * like instances of a given size: one parent cgroup per launcher, one child per capped process.
 */
import { mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Both cgroup versions measure a quota against a period; 100 ms is the kernel's default. */
const PERIOD_US = 100_000;

/** The kernel refuses quotas under 1 ms per period. */
export const MIN_CPU_QUOTA = 0.01;

/** What a CPU quota must be on this machine, for error messages. */
export function cpuQuotaExpectation(): string {
  return `a number of cores >= ${MIN_CPU_QUOTA} and <= ${os.availableParallelism()}`;
}

/** A quota in cores from text, or null unless it is a plain decimal within `cpuQuotaExpectation`. */
export function parseCpuQuota(value: string): number | null {
  if (!/^(\d+\.?\d*|\.\d+)$/.test(value.trim())) return null;
  const cores = Number(value);
  return cores >= MIN_CPU_QUOTA && cores <= os.availableParallelism() ? cores : null;
}

/** `0.25 core`, `1.5 cores`. */
export function formatCores(cores: number): string {
  return `${cores} ${cores === 1 || cores < 1 ? 'core' : 'cores'}`;
}

let launchers = 0;

/**
 * The cgroups of one launcher. `open` finds the hierarchy with the cpu controller (cgroup v1 `cpu`,
 * or cgroup v2 with `cpu` available) below this process's own cgroup and checks that it may
 * create groups there; the parent group exists only while it holds a child.
 */
export class CpuCgroups {
  private constructor(
    /** e.g. `cgroup v1 cpu`. */
    readonly mechanism: string,
    private readonly version: 1 | 2,
    /** The parent group, `<this process's cgroup>/paxos-<pid>-<n>`. */
    readonly parent: string,
  ) {}

  /** The cgroups, or why there can be none (one line). */
  static open(): CpuCgroups | { reason: string } {
    if (process.platform !== 'linux') return { reason: `cgroups need Linux, this is ${process.platform}` };
    const found = ownCpuCgroup();
    if ('reason' in found) return found;
    removeStaleParents(found.dir);
    const groups = new CpuCgroups(
      found.version === 1 ? 'cgroup v1 cpu' : 'cgroup v2 cpu.max',
      found.version,
      path.join(found.dir, `paxos-${process.pid}-${++launchers}`),
    );
    // Creating the parent once proves the permissions before any process depends on them.
    try {
      groups.ensureParent();
    } catch (err) {
      return { reason: (err as Error).message };
    }
    groups.removeParentIfEmpty();
    return groups;
  }

  /**
   * Puts `pid` in the child group `name` (created if needed) with a quota of `cores`, or with no
   * limit yet when `cores` is null (see `limit`); returns the group.
   */
  place(name: string, pid: number, cores: number | null): string {
    this.ensureParent();
    const dir = path.join(this.parent, name);
    attempt(`create ${dir}`, () => mkdirSync(dir, { recursive: true }));
    this.limit(name, cores);
    write(path.join(dir, 'cgroup.procs'), String(pid));
    return dir;
  }

  /** Sets the quota of the child group `name`: `cores`, or none (null). */
  limit(name: string, cores: number | null): void {
    const dir = path.join(this.parent, name);
    const quotaUs = cores === null ? null : Math.round(cores * PERIOD_US);
    if (this.version === 1) {
      write(path.join(dir, 'cpu.cfs_period_us'), String(PERIOD_US));
      write(path.join(dir, 'cpu.cfs_quota_us'), String(quotaUs ?? -1));
    } else {
      write(path.join(dir, 'cpu.max'), `${quotaUs ?? 'max'} ${PERIOD_US}`);
    }
  }

  /**
   * Removes the child group `name` (its process must have exited) and the parent once it holds no
   * child. A group that still holds a process stays; the next launcher in this cgroup removes it.
   */
  remove(name: string): void {
    try {
      rmdirSync(path.join(this.parent, name));
    } catch {
      // Already gone, or a process of it outlived the supervised one.
    }
    this.removeParentIfEmpty();
  }

  private ensureParent(): void {
    try {
      mkdirSync(this.parent);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
      throw new Error(`cannot create ${this.parent}: ${errorCode(err)}${rootHint(err)}`);
    }
    if (this.version === 2) {
      // cpu.max appears in a child only when the parent hands the cpu controller down.
      try {
        write(path.join(path.dirname(this.parent), 'cgroup.subtree_control'), '+cpu');
        write(path.join(this.parent, 'cgroup.subtree_control'), '+cpu');
      } catch (err) {
        rmdirQuietly(this.parent);
        throw err;
      }
    }
  }

  private removeParentIfEmpty(): void {
    if (childGroups(this.parent).length === 0) rmdirQuietly(this.parent);
  }
}

/** The directory of this process's own cgroup in the hierarchy that has the cpu controller. */
function ownCpuCgroup(): { version: 1 | 2; dir: string } | { reason: string } {
  let mounts: string;
  let membership: string;
  try {
    mounts = readFileSync('/proc/self/mountinfo', 'utf8');
    membership = readFileSync('/proc/self/cgroup', 'utf8');
  } catch (err) {
    return { reason: `cannot read this process's cgroups: ${errorCode(err)}` };
  }
  const mountOf = (match: (fsType: string, superOptions: string[]) => boolean) => {
    for (const line of mounts.split('\n')) {
      const [left = '', right = ''] = line.split(' - ');
      const [fsType = '', , superOptions = ''] = right.split(' ');
      const fields = left.split(' ');
      if (match(fsType, superOptions.split(',')))
        return { root: fields[3] ?? '/', mountPoint: fields[4] ?? '' };
    }
    return null;
  };
  const groupOf = (match: (id: string, controllers: string[]) => boolean) => {
    for (const line of membership.split('\n')) {
      const m = /^(\d+):([^:]*):(.*)$/.exec(line);
      if (m !== null && match(m[1] as string, (m[2] as string).split(','))) return m[3] as string;
    }
    return null;
  };
  // A mount of part of a hierarchy (a container's) shows its own root; membership paths are absolute.
  const dirIn = (mount: { root: string; mountPoint: string }, group: string) =>
    path.join(
      mount.mountPoint,
      mount.root !== '/' && group.startsWith(mount.root) ? group.slice(mount.root.length) : group,
    );

  const v1 = mountOf((type, options) => type === 'cgroup' && options.includes('cpu'));
  const v1Group = groupOf((_, controllers) => controllers.includes('cpu'));
  if (v1 !== null && v1Group !== null) return { version: 1, dir: dirIn(v1, v1Group) };
  const v2 = mountOf((type) => type === 'cgroup2');
  const v2Group = groupOf((id, controllers) => id === '0' && controllers.join('') === '');
  if (v2 === null || v2Group === null)
    return { reason: 'no cgroup hierarchy with the cpu controller is mounted' };
  const dir = dirIn(v2, v2Group);
  let controllers: string[];
  try {
    controllers = readFileSync(path.join(dir, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
  } catch (err) {
    return { reason: `cannot read ${path.join(dir, 'cgroup.controllers')}: ${errorCode(err)}` };
  }
  if (!controllers.includes('cpu')) {
    return { reason: `the cpu controller is not available in ${dir} (cgroup.controllers)` };
  }
  return { version: 2, dir };
}

/** Parents left by a launcher whose process died without stopping its children (SIGKILL). */
function removeStaleParents(dir: string): void {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const entry of entries) {
    const pid = /^paxos-(\d+)-\d+$/.exec(entry)?.[1];
    if (pid === undefined || isAlive(Number(pid))) continue;
    const parent = path.join(dir, entry);
    for (const child of childGroups(parent)) rmdirQuietly(path.join(parent, child));
    rmdirQuietly(parent);
  }
}

function childGroups(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function write(file: string, value: string): void {
  attempt(`write ${value} to ${file}`, () => writeFileSync(file, value));
}

function attempt(what: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    throw new Error(`cannot ${what}: ${errorCode(err)}${rootHint(err)}`);
  }
}

function rmdirQuietly(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // Gone already, or still in use: nothing more to do here.
  }
}

function errorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}

function rootHint(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EROFS') return ' (the cgroup filesystem is mounted read-only)';
  return code === 'EACCES' || code === 'EPERM' ? ' (cgroups need root)' : '';
}
