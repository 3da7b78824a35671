import { describe, expect, it } from 'vitest';
import { describeLauncherEvent } from '../src/index.ts';

describe('describeLauncherEvent', () => {
  it('says how a process exited', () => {
    expect(
      describeLauncherEvent({ name: 'acceptor-g0-a1', event: 'exited', pid: 7, code: 1, signal: null }),
    ).toBe('acceptor-g0-a1: exited (code 1)');
    expect(
      describeLauncherEvent({ name: 'proposer-0', event: 'exited', pid: 7, code: null, signal: 'SIGKILL' }),
    ).toBe('proposer-0: exited (SIGKILL)');
  });

  it('says when a restart is due, and that a process which keeps exiting does not stay up', () => {
    const restarting = { name: 'acceptor-g0-a1', event: 'restarting', pid: null } as const;
    expect(describeLauncherEvent({ ...restarting, delayMs: 200, quickExits: 0 })).toBe(
      'acceptor-g0-a1: restarting in 200 ms',
    );
    expect(describeLauncherEvent({ ...restarting, delayMs: 200, quickExits: 1 })).toBe(
      'acceptor-g0-a1: restarting in 200 ms',
    );
    expect(
      describeLauncherEvent({ ...restarting, delayMs: 800, quickExits: 3 }, 'logs/acceptor-g0-a1.log'),
    ).toBe(
      'acceptor-g0-a1: restarting in 800 ms (3rd exit in a row within 10 s of its start: it does not stay up, see logs/acceptor-g0-a1.log)',
    );
    expect(describeLauncherEvent({ ...restarting, delayMs: 5000, quickExits: 12 })).toContain(
      '(12th exit in a row',
    );
    expect(describeLauncherEvent({ ...restarting, delayMs: 5000, quickExits: 22 })).toContain(
      '(22nd exit in a row',
    );
  });
});
