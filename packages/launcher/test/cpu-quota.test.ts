import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cpuQuotaArgument } from '../src/cli-args.ts';
import { CpuCgroups, formatCores, parseCpuQuota } from '../src/cpu-quota.ts';

const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await new Promise((r) => c.once('exit', r));
    }
  }
});

function busyLoop(): ChildProcess & { pid: number } {
  // It ends by itself in case this test dies before it can stop it. A session of its own, so
  // that favouring it below changes nothing else: the kernel groups tasks by session
  // ("autogroups") and weighs the groups, not their tasks, against each other.
  const child = spawn(
    process.execPath,
    ['-e', 'const end = Date.now() + 30_000; while (Date.now() < end);'],
    { stdio: 'ignore', detached: true },
  );
  children.push(child);
  if (child.pid === undefined) throw new Error('could not start a busy loop');
  // Other work on a shared machine would otherwise decide what an uncapped loop gets. Only root
  // may do this; without it the loops compete with the rest of the machine as they are.
  try {
    writeFileSync(`/proc/${child.pid}/autogroup`, '-10');
    os.setPriority(child.pid, -10);
  } catch {}
  return child as ChildProcess & { pid: number };
}

/** utime + stime in clock ticks (1/100 s). */
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return Number(fields[11]) + Number(fields[12]);
}

describe('CPU quotas', () => {
  it('accepts a number of cores from 0.01 up to the machine, and nothing else', () => {
    const cores = os.availableParallelism();
    expect(parseCpuQuota('0.25')).toBe(0.25);
    expect(parseCpuQuota('.5')).toBe(0.5);
    expect(parseCpuQuota(String(cores))).toBe(cores);
    for (const bad of ['0', '0.001', '-1', '', 'abc', '1e-1', 'Infinity', String(cores + 1), '0.5x']) {
      expect(parseCpuQuota(bad), bad).toBeNull();
    }
    expect(() => cpuQuotaArgument('--cpu-quota')('0')).toThrow(
      `--cpu-quota must be a number of cores >= 0.01 and <= ${cores}, got "0"`,
    );
    expect([formatCores(0.25), formatCores(1), formatCores(1.5)]).toEqual([
      '0.25 core',
      '1 core',
      '1.5 cores',
    ]);
  });

  it('holds a busy process under a quarter core while an uncapped one runs freely, and removes its cgroups', async () => {
    const cgroups = CpuCgroups.open();
    if (!(cgroups instanceof CpuCgroups)) {
      // Not root, or no cpu controller: what is printed instead of a quota must say why, in one line.
      expect(cgroups.reason).toMatch(/^\S.*$/);
      return;
    }
    const capped = busyLoop();
    try {
      const dir = cgroups.place('busy', capped.pid, 0.25);
      const uncapped = busyLoop();
      expect(readFileSync(`/proc/${capped.pid}/cgroup`, 'utf8')).toContain(
        `/${path.basename(cgroups.parent)}/busy\n`,
      );
      const before = [cpuTicks(capped.pid), cpuTicks(uncapped.pid)];
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, 2000));
      const seconds = (performance.now() - t0) / 1000;
      const [cappedShare, uncappedShare] = [cpuTicks(capped.pid), cpuTicks(uncapped.pid)].map(
        (ticks, i) => (ticks - (before[i] as number)) / seconds,
      );
      console.log(
        `busy loops over ${seconds.toFixed(1)} s, % of one core: capped ${cappedShare}, uncapped ${uncappedShare}`,
      );
      expect(cappedShare).toBeLessThan(40);
      expect(uncappedShare).toBeGreaterThan(40);
      expect(existsSync(dir) && existsSync(cgroups.parent)).toBe(true);
    } finally {
      capped.kill('SIGKILL');
      if (capped.exitCode === null && capped.signalCode === null)
        await new Promise((r) => capped.once('exit', r));
      cgroups.remove('busy');
    }
    expect(existsSync(cgroups.parent)).toBe(false);
  });
});
