/**
 * A load profile: the rate (commands/s) an open-loop load generator offers over time, piecewise
 * linear between points, the last rate held after the last point. Pure: no clock, no IO.
 *
 * Written `t:rate,t:rate,...` with `t` in seconds since the load started, e.g.
 * `0:200,60:1600,90:1600,91:4000` (a ramp from 200 to 1600 commands/s over a minute, held for
 * 30 s, then a one-second climb to 4000).
 */
export interface ProfilePoint {
  /** Seconds since the load started. */
  readonly t: number;
  /** Commands per second at `t`. */
  readonly rate: number;
}

/** At least one point; the first at 0; times strictly ascending; rates >= 0. */
export type LoadProfile = readonly ProfilePoint[];

export type ProfileParse =
  | { readonly ok: true; readonly profile: LoadProfile }
  | { readonly ok: false; readonly error: string };

/** What a profile must look like, as the end of "expected …" in a settings error. */
export const PROFILE_EXPECTED =
  'points t:rate separated by commas (seconds since the start : commands/s), the first at 0, times ascending, rates >= 0, e.g. 0:200,60:1600';

// No sign, exponent, hex or Infinity: a profile is typed by hand and a typo must not parse.
const NUMBER = /^\d+(\.\d+)?$/;

export function parseProfile(text: string): ProfileParse {
  const fail = (error: string): ProfileParse => ({ ok: false, error });
  if (text.trim() === '') return fail('no points');
  const points: ProfilePoint[] = [];
  for (const [i, raw] of text.split(',').entries()) {
    const n = i + 1;
    const parts = raw.split(':').map((p) => p.trim());
    if (parts.length !== 2) return fail(`point ${n} "${raw.trim()}" is not t:rate`);
    const [tText = '', rateText = ''] = parts;
    const t = Number(tText);
    const rate = Number(rateText);
    if (!NUMBER.test(tText) || !Number.isFinite(t))
      return fail(`point ${n} "${raw.trim()}": time "${tText}" is not a number of seconds >= 0`);
    if (!NUMBER.test(rateText) || !Number.isFinite(rate))
      return fail(`point ${n} "${raw.trim()}": rate "${rateText}" is not a number of commands/s >= 0`);
    const previous = points.at(-1);
    if (previous === undefined && t !== 0) return fail(`the first point is at ${tText} s, not at 0`);
    if (previous !== undefined && t <= previous.t)
      return fail(`point ${n} at ${tText} s is not after point ${n - 1} at ${previous.t} s`);
    points.push({ t, rate });
  }
  return { ok: true, profile: points };
}

/** The profile of a rate held from the start. */
export function constantProfile(rate: number): LoadProfile {
  return [{ t: 0, rate }];
}

/** The profile in its canonical written form (parses back to the same profile). */
export function describeProfile(profile: LoadProfile): string {
  return profile.map((p) => `${p.t}:${p.rate}`).join(',');
}

/** Commands/s at `t` seconds; 0 before the start. */
export function rateAt(profile: LoadProfile, t: number): number {
  if (t < 0) return 0;
  for (let i = profile.length - 1; i >= 0; i--) {
    const p = profile[i] as ProfilePoint;
    if (t < p.t) continue;
    const next = profile[i + 1];
    if (next === undefined) return p.rate;
    return p.rate + ((next.rate - p.rate) * (t - p.t)) / (next.t - p.t);
  }
  return 0;
}

/** Commands the profile asks for from the start to `t` seconds: the integral of its rate. */
export function commandsBy(profile: LoadProfile, t: number): number {
  let total = 0;
  for (let i = 0; i < profile.length; i++) {
    const p = profile[i] as ProfilePoint;
    if (t <= p.t) break;
    const end = Math.min(t, profile[i + 1]?.t ?? t);
    // Trapezoid: exact for a linear segment.
    total += ((p.rate + rateAt(profile, end)) / 2) * (end - p.t);
  }
  return total;
}

/**
 * Whole commands due in (t0, t1]: the difference of the whole counts due by each time, so calls
 * over consecutive intervals add up to the whole count due by the last time, whatever the
 * intervals (a late tick sends more, never loses or gains a command).
 */
export function commandsDue(profile: LoadProfile, t0: number, t1: number): number {
  return wholeBy(profile, t1) - wholeBy(profile, t0);
}

// The epsilon keeps a count the profile makes whole (300/s for 3 s) from rounding down to one less.
function wholeBy(profile: LoadProfile, t: number): number {
  return Math.floor(commandsBy(profile, t) + 1e-6);
}

/**
 * The open-loop profile the TARGET_RATE and LOAD_PROFILE settings ask for: null for closed loop
 * (neither set), or one line naming what is wrong. TARGET_RATE 0 and LOAD_PROFILE "" are unset.
 */
export function chooseProfile(
  targetRate: number,
  loadProfile: string,
):
  | { readonly ok: true; readonly profile: LoadProfile | null }
  | { readonly ok: false; readonly error: string } {
  if (loadProfile === '') return { ok: true, profile: targetRate > 0 ? constantProfile(targetRate) : null };
  if (targetRate > 0)
    return {
      ok: false,
      error: `TARGET_RATE (--target-rate) is ${targetRate} and LOAD_PROFILE (--load-profile) is ${JSON.stringify(loadProfile)}: expected one of them (TARGET_RATE for a constant rate, LOAD_PROFILE for a rate that changes)`,
    };
  const parsed = parseProfile(loadProfile);
  if (!parsed.ok)
    return {
      ok: false,
      error: `LOAD_PROFILE (--load-profile): got ${JSON.stringify(loadProfile)}, expected ${PROFILE_EXPECTED} (${parsed.error})`,
    };
  return parsed;
}
