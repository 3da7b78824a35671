import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { AutoscaleFigures } from '../src/autoscale-report.ts';
import { assertPortsFree } from '../src/cluster.ts';

const DEMO = fileURLToPath(new URL('../dist/demo-autoscale.js', import.meta.url));
const BASE_PORT = 27600;
const dir = mkdtempSync(path.join(tmpdir(), 'paxos-autoscale-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A capacity table that makes batchers small: 200 messages/s each, so at a target utilization of
 * 0.7 the ramp's 600 commands/s needs 5 of them, while the other roles stay at one. The
 * processes run under a CPU quota but far from it: what this test checks is the loop (observe,
 * decide, act, drain) under live load, not this machine's speed.
 */
function writeCapacity(file: string): void {
  const role = (messagesPerSecond: number) => ({ messagesPerSecond, commandsPerSecond: messagesPerSecond });
  writeFileSync(
    file,
    JSON.stringify({
      date: new Date().toISOString(),
      cpuQuota: 0.5,
      roles: { batcher: role(200), 'proxy-leader': role(50_000), unbatcher: role(50_000) },
    }),
  );
}

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [DEMO, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => {
      output += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      output += c.toString();
    });
    const killer = setTimeout(() => child.kill('SIGINT'), 150_000);
    child.once('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, output });
    });
  });
}

describe('demo:autoscale', () => {
  it('scales batchers out by at least 2 under an open-loop ramp and back to the floor, losing nothing', async () => {
    const capacityFile = path.join(dir, 'capacity.json');
    writeCapacity(capacityFile);
    const out = path.join(dir, 'autoscale.json');
    const { code, output } = await run(
      [
        '--dir',
        path.join(dir, 'cluster'),
        '--base-port',
        String(BASE_PORT),
        '--cpu-quota',
        '0.5',
        '--clients',
        '16',
        '--profile',
        '0:80,3:80,9:600,19:600,20:80,38:80',
        '--out',
        out,
        '--chart',
        path.join(dir, 'autoscale.svg'),
      ],
      {
        CAPACITY_FILE: capacityFile,
        AUTOSCALE_INTERVAL_MS: '1000',
        AUTOSCALE_STABILIZATION_S: '6',
        AUTOSCALE_MAX_BATCHERS: '6',
      },
    );
    console.log(
      output
        .split('\n')
        .filter((l) => / s {2}[↑↓⟳]|^(decisions|peak|lost|back|commands)/.test(l))
        .join('\n'),
    );
    expect(code, output).toBe(0);
    const report = JSON.parse(readFileSync(out, 'utf8')) as {
      summary: { lost: number; unacknowledged: number; submitted: number; acknowledged: number };
      figures: AutoscaleFigures;
    };
    // Every acknowledgement is in the acceptors' logs; every command submitted was acknowledged.
    expect(report.summary).toMatchObject({ lost: 0, unacknowledged: 0 });
    expect(report.summary.acknowledged).toBeGreaterThan(5_000);
    const { figures } = report;
    expect(figures.peakInstances.batcher).toBeGreaterThanOrEqual(3);
    expect(figures.peakInstances.batcher).toBeLessThanOrEqual(6);
    expect(figures.decisions.out).toBeGreaterThanOrEqual(1);
    expect(figures.decisions.in).toBeGreaterThanOrEqual(2);
    expect(figures.backAtFloorS, 'back at one batcher after the load fell').not.toBeNull();
    expect(readFileSync(path.join(dir, 'autoscale.svg'), 'utf8')).toMatch(/^<svg/);
    // No process left behind: every port of the cluster and of the batchers it added is free.
    const ports = Array.from({ length: 200 }, (_, i) => BASE_PORT + i);
    const metrics = Array.from({ length: 200 }, (_, i) => BASE_PORT + 1000 + i);
    await expect(assertPortsFree('127.0.0.1', [...ports, ...metrics])).resolves.toBeUndefined();
  });

  it('refuses a bad setting or profile in one line, exit 2, before starting anything', async () => {
    const { code, output } = await run(['--dir', path.join(dir, 'bad')], { AUTOSCALE_TOLERANCE: '2' });
    expect(code).toBe(2);
    expect(output.trim()).toMatch(/^demo:autoscale: AUTOSCALE_TOLERANCE: got "2", expected .*$/);
    const profile = await run(['--dir', path.join(dir, 'bad'), '--profile', '0:100,5:x'], {
      CAPACITY_FILE: path.join(dir, 'no-such-capacity.json'),
    });
    expect(profile.code).toBe(2);
    expect(profile.output.trim()).toMatch(/^demo:autoscale: --profile: point 2 "5:x": rate "x" is not .*$/);
  });
});
