import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CRASH_LOOP_EXITS,
  describeLauncherEvent,
  isQuietEvent,
  type LauncherEvent,
  LocalLauncher,
  type ProcessSpec,
} from '../src/index.ts';

const dirs: string[] = [];
const launchers: LocalLauncher[] = [];
afterEach(async () => {
  for (const l of launchers.splice(0)) await Promise.all(l.processes().map((p) => l.stop(p.name, 1000)));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A launcher whose every role runs `script` (a stand-in for a role app), and the events it reported. */
function launcherRunning(script: string): { launcher: LocalLauncher; events: LauncherEvent[] } {
  const dir = mkdtempSync(path.join(tmpdir(), 'paxos-launcher-'));
  dirs.push(dir);
  const file = path.join(dir, 'role.mjs');
  writeFileSync(file, script);
  const events: LauncherEvent[] = [];
  const launcher = new LocalLauncher({
    logDir: path.join(dir, 'logs'),
    restartDelayMs: 20,
    roleBinary: () => file,
    onEvent: (e) => events.push(e),
  });
  launchers.push(launcher);
  return { launcher, events };
}

const SPEC: ProcessSpec = {
  name: 'acceptor-g0-a0',
  role: 'acceptor',
  ports: [],
  metricsPort: null,
  env: {},
  restart: true,
};

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('LocalLauncher', () => {
  it('does not restart a process that exits with code 2 (bad configuration) and reports its last line', async () => {
    const { launcher, events } = launcherRunning(
      'console.error(\'paxos-acceptor: F (--f): got "x", expected an integer >= 0\'); process.exit(2);',
    );
    await launcher.launch(SPEC);
    await until('the exit', () => events.some((e) => e.event === 'exited'));
    await new Promise((r) => setTimeout(r, 200));
    const exited = events.find((e) => e.event === 'exited');
    expect(exited?.code).toBe(2);
    expect(exited?.message).toBe('paxos-acceptor: F (--f): got "x", expected an integer >= 0');
    expect(events.filter((e) => e.event === 'started')).toHaveLength(1);
    expect(events.some((e) => e.event === 'restarting')).toBe(false);
    expect(launcher.processes()[0]?.state).toBe('stopped');
    expect(describeLauncherEvent(exited as LauncherEvent)).toBe(
      'acceptor-g0-a0: exited (code 2), not restarted: paxos-acceptor: F (--f): got "x", expected an integer >= 0',
    );
  });

  it('backs off a crash loop and reports it once, not once per restart', async () => {
    const { launcher, events } = launcherRunning("console.error('disk full'); process.exit(1);");
    await launcher.launch(SPEC);
    const starts = () => events.filter((e) => e.event === 'started').length;
    await until('a few restarts past the report', () => starts() >= CRASH_LOOP_EXITS + 2);
    const looping = [...events];
    await launcher.stop(SPEC.name, 1000);

    const loops = events.filter((e) => e.event === 'crash-loop');
    expect(loops).toHaveLength(1);
    expect(loops[0]?.quickExits).toBe(CRASH_LOOP_EXITS);
    expect(loops[0]?.message).toBe('disk full');
    expect(describeLauncherEvent(loops[0] as LauncherEvent)).toMatch(
      /^acceptor-g0-a0: crash loop: 3 exits in a row within 10 s of its start; retrying with back-off up to 5 s, reported once; last log line: disk full$/,
    );
    // The wait doubles with each quick exit.
    const delays = events.filter((e) => e.event === 'restarting').map((e) => e.delayMs as number);
    for (let i = 1; i < delays.length; i++)
      expect(delays[i]).toBe(Math.min(5000, 2 * (delays[i - 1] as number)));
    // What a watcher prints: each exit until the report, the report, then nothing more of this loop.
    const printed = looping.filter((e) => !isQuietEvent(e)).map((e) => e.event);
    const reportAt = printed.indexOf('crash-loop');
    expect(printed.slice(reportAt + 1)).toEqual([]);
    expect(printed.filter((e) => e === 'exited')).toHaveLength(CRASH_LOOP_EXITS);
  });
});
