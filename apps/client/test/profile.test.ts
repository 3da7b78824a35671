import { describe, expect, it } from 'vitest';
import {
  chooseProfile,
  commandsBy,
  commandsDue,
  constantProfile,
  describeProfile,
  type LoadProfile,
  parseProfile,
  rateAt,
} from '../src/profile.ts';

function parsed(text: string): LoadProfile {
  const r = parseProfile(text);
  if (!r.ok) throw new Error(r.error);
  return r.profile;
}

const demo = parsed('0:200,60:1600,90:1600,91:4000,100:4000,101:1600,130:200');

describe('parseProfile', () => {
  it('reads points, with decimals and spaces around them', () => {
    expect(parsed('0:200, 60 : 1600,90.5:0.5')).toEqual([
      { t: 0, rate: 200 },
      { t: 60, rate: 1600 },
      { t: 90.5, rate: 0.5 },
    ]);
    expect(parsed('0:0')).toEqual([{ t: 0, rate: 0 }]);
  });

  it.each([
    ['', /no points/],
    ['  ', /no points/],
    ['5:100', /first point is at 5 s, not at 0/],
    ['0:100,10:200,10:300', /point 3 at 10 s is not after point 2 at 10 s/],
    ['0:100,10:200,5:300', /point 3 at 5 s is not after point 2 at 10 s/],
    ['0:100,10:-5', /point 2 "10:-5": rate "-5" is not a number of commands\/s >= 0/],
    ['0:100,-1:5', /time "-1" is not a number of seconds >= 0/],
    ['0:100,10', /point 2 "10" is not t:rate/],
    ['0:100,10:20:30', /point 2 "10:20:30" is not t:rate/],
    ['0:100,', /point 2 "" is not t:rate/],
    ['0:1e3', /rate "1e3" is not a number/],
    ['0:fast', /rate "fast" is not a number/],
    ['0x0:1', /time "0x0" is not a number/],
    ['0:Infinity', /rate "Infinity"/],
    [`0:1${'0'.repeat(400)}`, /is not a number of commands\/s/],
  ])('rejects %j: %s', (text, error) => {
    const r = parseProfile(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(error);
  });

  it('describes a profile in a form that parses back to it', () => {
    expect(describeProfile(demo)).toBe('0:200,60:1600,90:1600,91:4000,100:4000,101:1600,130:200');
    expect(parsed(describeProfile(parsed('0:1.5, 2.25:3')))).toEqual(parsed('0:1.5,2.25:3'));
  });
});

describe('rateAt', () => {
  it('is linear between points, holds the last rate after the last point, and is 0 before the start', () => {
    expect(rateAt(demo, 0)).toBe(200);
    expect(rateAt(demo, 30)).toBe(900);
    expect(rateAt(demo, 60)).toBe(1600);
    expect(rateAt(demo, 75)).toBe(1600);
    expect(rateAt(demo, 90.5)).toBe(2800);
    expect(rateAt(demo, 95)).toBe(4000);
    expect(rateAt(demo, 115.5)).toBe(900);
    expect(rateAt(demo, 130)).toBe(200);
    expect(rateAt(demo, 1e6)).toBe(200);
    expect(rateAt(demo, -1)).toBe(0);
    expect(rateAt(constantProfile(250), 12.3)).toBe(250);
  });
});

describe('commandsBy (the integral of the rate)', () => {
  it('adds up each segment', () => {
    expect(commandsBy(demo, 0)).toBe(0);
    expect(commandsBy(demo, 60)).toBe(((200 + 1600) / 2) * 60);
    expect(commandsBy(demo, 30)).toBe(((200 + 900) / 2) * 30);
    expect(commandsBy(demo, 90)).toBe(54_000 + 48_000);
    expect(commandsBy(demo, 91)).toBe(102_000 + 2_800);
    // After the last point the last rate holds.
    expect(commandsBy(demo, 140)).toBeCloseTo(commandsBy(demo, 130) + 2000, 6);
    expect(commandsBy(constantProfile(300), 2.5)).toBe(750);
    expect(commandsBy(demo, -3)).toBe(0);
  });
});

describe('commandsDue', () => {
  it('sums to the whole count due by the end, however the time is cut into ticks', () => {
    const profile = parsed('0:300,3:300,3.1:900');
    const total = 900 + 60 + 2610;
    expect(commandsDue(profile, 0, 6)).toBe(total);
    // Irregular ticks, as a loaded event loop gives them: the sum is the same exact count.
    let t = 0;
    let sum = 0;
    let seed = 7;
    while (t < 6) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const next = Math.min(6, t + 0.001 + (seed / 2 ** 31) * 0.2);
      const due = commandsDue(profile, t, next);
      expect(due).toBeGreaterThanOrEqual(0);
      sum += due;
      t = next;
    }
    expect(sum).toBe(total);
  });

  it('counts whole commands: a fraction is carried to the next tick, not lost', () => {
    const profile = constantProfile(1);
    expect(commandsDue(profile, 0, 0.4)).toBe(0);
    expect(commandsDue(profile, 0.4, 0.8)).toBe(0);
    expect(commandsDue(profile, 0.8, 1.2)).toBe(1);
    expect(commandsDue(constantProfile(0), 0, 100)).toBe(0);
    // 0.1 s steps do not add to a whole second in floating point; the count still is whole.
    let sum = 0;
    for (let i = 0; i < 30; i++) sum += commandsDue(constantProfile(300), i * 0.1, (i + 1) * 0.1);
    expect(sum).toBe(900);
  });
});

describe('chooseProfile (TARGET_RATE and LOAD_PROFILE)', () => {
  it('is closed loop when neither is set, a constant rate for TARGET_RATE, the parsed LOAD_PROFILE', () => {
    expect(chooseProfile(0, '')).toEqual({ ok: true, profile: null });
    expect(chooseProfile(500, '')).toEqual({ ok: true, profile: [{ t: 0, rate: 500 }] });
    expect(chooseProfile(0, '0:1,5:2')).toEqual({ ok: true, profile: parsed('0:1,5:2') });
  });

  it('refuses both, and a bad profile, in one line naming the setting', () => {
    const both = chooseProfile(500, '0:1');
    expect(both.ok).toBe(false);
    if (!both.ok)
      expect(both.error).toBe(
        'TARGET_RATE (--target-rate) is 500 and LOAD_PROFILE (--load-profile) is "0:1": expected one of them (TARGET_RATE for a constant rate, LOAD_PROFILE for a rate that changes)',
      );
    const bad = chooseProfile(0, '0:1,\n0:2');
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.error).toMatch(/^LOAD_PROFILE \(--load-profile\): got "0:1,\\n0:2", expected points t:rate/);
      expect(bad.error).toMatch(/\(point 2 at 0 s is not after point 1 at 0 s\)$/);
      expect(bad.error).not.toContain('\n');
    }
  });
});
