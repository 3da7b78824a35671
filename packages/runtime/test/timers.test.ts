import { describe, expect, it } from 'vitest';
import { RoleTimers } from '../src/timers.ts';

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('RoleTimers', () => {
  it('fires a zero-delay timer set during a burst when the burst ends, once', async () => {
    const timers = new RoleTimers();
    const fired: string[] = [];
    timers.set('flush', 0, () => fired.push('flush'));
    expect(fired).toEqual([]);
    timers.burstEnded();
    expect(fired).toEqual(['flush']);
    await nextTurn();
    timers.burstEnded();
    expect(fired).toEqual(['flush']);
  });

  it('fires a zero-delay timer after the turn when no burst ends first', async () => {
    const timers = new RoleTimers();
    const fired: string[] = [];
    timers.set('flush', 0, () => fired.push('flush'));
    await nextTurn();
    expect(fired).toEqual(['flush']);
  });

  it('skips at a burst end what an earlier timer cleared, and leaves what it set anew for the next', async () => {
    const timers = new RoleTimers();
    const fired: string[] = [];
    timers.set('a', 0, () => {
      fired.push('a');
      timers.clear('b');
      timers.set('a', 0, () => fired.push('a again'));
    });
    timers.set('b', 0, () => fired.push('b'));
    timers.burstEnded();
    expect(fired).toEqual(['a']);
    timers.burstEnded();
    expect(fired).toEqual(['a', 'a again']);
    await nextTurn();
    expect(fired).toEqual(['a', 'a again']);
  });

  it('keeps positive delays on setTimeout, untouched by burst ends; re-arming replaces', async () => {
    const timers = new RoleTimers();
    const fired: string[] = [];
    timers.set('t', 5, () => fired.push('first'));
    timers.set('t', 10, () => fired.push('second'));
    timers.burstEnded();
    expect(fired).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(fired).toEqual(['second']);
  });

  it('clearAll cancels everything', async () => {
    const timers = new RoleTimers();
    const fired: string[] = [];
    timers.set('a', 0, () => fired.push('a'));
    timers.set('b', 1, () => fired.push('b'));
    timers.clearAll();
    timers.burstEnded();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fired).toEqual([]);
  });
});
