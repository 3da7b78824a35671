import { z } from 'zod';
import type { CapacityTable } from './capacity.ts';
import {
  type PolicySettings,
  type RoleBounds,
  type RoleCapacity,
  SCALED_ROLES,
  type ScaledRole,
} from './types.ts';

/**
 * The autoscaler's settings, from environment-style names. Values arrive as strings (a CLI maps
 * its flags onto the same names) and are validated with zod; a bad value throws
 * AutoscalerSettingsError with one line naming the setting, what it expects and what it got, in
 * the runtime's format, so a CLI prints it and exits 2.
 */

export type AutoscalerEnvironment = 'local' | 'ec2';

export interface AutoscalerSettings {
  readonly intervalMs: number;
  readonly targetUtilization: number;
  readonly tolerance: number;
  readonly stabilizationWindowMs: number;
  /** Acceptor groups' own scale-in window (a reconfiguration is costlier than a process). */
  readonly acceptorGroupStabilizationWindowMs: number;
  readonly readyTimeoutMs: number;
  readonly bounds: Readonly<Record<ScaledRole, RoleBounds>>;
  readonly capacityFile: string;
}

export class AutoscalerSettingsError extends Error {
  override readonly name = 'AutoscalerSettingsError';
}

/** One row of the settings table that CLIs and the README list. */
export interface AutoscalerSettingInfo {
  readonly name: string;
  readonly defaultLocal: string;
  readonly defaultEc2: string;
  readonly meaning: string;
  /** Phrase completing "expected …" in error messages. */
  readonly expected: string;
}

const decimal = /^[+]?(\d+(\.\d*)?|\.\d+)$/;
const integer = (min: number) =>
  z.string().regex(/^\d+$/).transform(Number).pipe(z.number().int().min(min).max(Number.MAX_SAFE_INTEGER));
const number = () => z.string().regex(decimal).transform(Number).pipe(z.number().finite());
/** Seconds as written by a person, milliseconds as used by the code. */
const secondsToMs = (min: number, exclusive: boolean) =>
  number()
    .pipe(exclusive ? z.number().gt(min) : z.number().min(min))
    .transform((s) => Math.round(s * 1000));

interface Spec<T> extends AutoscalerSettingInfo {
  readonly schema: z.ZodType<T, string>;
}
const spec = <T>(s: Spec<T>): Spec<T> => s;

const ROLE_ENV: Readonly<Record<ScaledRole, string>> = {
  batcher: 'BATCHERS',
  'proxy-leader': 'PROXY_LEADERS',
  unbatcher: 'UNBATCHERS',
  'acceptor-group': 'ACCEPTOR_GROUPS',
};
const ROLE_PLURAL: Readonly<Record<ScaledRole, string>> = {
  batcher: 'batchers',
  'proxy-leader': 'proxy leaders',
  unbatcher: 'unbatchers',
  'acceptor-group': 'acceptor groups',
};
/** Why the minimum is at least 1, and the default maximum (acceptor groups: a few, local only). */
const ROLE_BOUNDS: Readonly<Record<ScaledRole, { why: string; maxLocal: string; maxEc2: string }>> = {
  batcher: { why: 'every command passes through one', maxLocal: '8', maxEc2: '16' },
  'proxy-leader': { why: 'every command passes through one', maxLocal: '8', maxEc2: '16' },
  unbatcher: { why: 'every command passes through one', maxLocal: '8', maxEc2: '16' },
  'acceptor-group': { why: 'every slot is chosen by one', maxLocal: '4', maxEc2: '4' },
};

const boundSpecs = (role: ScaledRole) => ({
  min: spec({
    name: `AUTOSCALE_MIN_${ROLE_ENV[role]}`,
    defaultLocal: '1',
    defaultEc2: '1',
    meaning: `fewest ${ROLE_PLURAL[role]} (at least 1: ${ROLE_BOUNDS[role].why})`,
    expected: 'an integer >= 1',
    schema: integer(1),
  }),
  max: spec({
    name: `AUTOSCALE_MAX_${ROLE_ENV[role]}`,
    defaultLocal: ROLE_BOUNDS[role].maxLocal,
    defaultEc2: ROLE_BOUNDS[role].maxEc2,
    meaning: `most ${ROLE_PLURAL[role]}`,
    expected: 'an integer >= 1',
    schema: integer(1),
  }),
});

const SPECS = {
  intervalMs: spec({
    name: 'AUTOSCALE_INTERVAL_MS',
    defaultLocal: '2000',
    defaultEc2: '15000',
    meaning: 'how often metrics are read and the policy decides (one period)',
    expected: 'an integer >= 100 (milliseconds)',
    schema: integer(100),
  }),
  targetUtilization: spec({
    name: 'AUTOSCALE_TARGET_UTILIZATION',
    defaultLocal: '0.7',
    defaultEc2: '0.7',
    meaning: "the share of an instance's measured capacity the policy aims for",
    expected: 'a number in (0, 1]',
    schema: number().pipe(z.number().gt(0).max(1)),
  }),
  tolerance: spec({
    name: 'AUTOSCALE_TOLERANCE',
    defaultLocal: '0.1',
    defaultEc2: '0.1',
    meaning: 'no change while load is within 1 ± this of the target',
    expected: 'a number in [0, 1)',
    schema: number().pipe(z.number().min(0).lt(1)),
  }),
  stabilizationWindowMs: spec({
    name: 'AUTOSCALE_STABILIZATION_S',
    defaultLocal: '60',
    defaultEc2: '300',
    meaning: 'scale in only after the load has wanted fewer instances for this long',
    expected: 'a number >= 0 (seconds)',
    schema: secondsToMs(0, false),
  }),
  acceptorGroupStabilizationWindowMs: spec({
    name: 'AUTOSCALE_ACCEPTOR_GROUPS_STABILIZATION_S',
    defaultLocal: '300',
    defaultEc2: '300',
    meaning: 'scale acceptor groups in only after the load has wanted fewer for this long',
    expected: 'a number >= 0 (seconds)',
    schema: secondsToMs(0, false),
  }),
  readyTimeoutMs: spec({
    name: 'AUTOSCALE_READY_TIMEOUT_S',
    defaultLocal: '30',
    defaultEc2: '300',
    meaning: 'an instance not ready after this long is replaced',
    expected: 'a number > 0 (seconds)',
    schema: secondsToMs(0, true),
  }),
  capacityFile: spec({
    name: 'CAPACITY_FILE',
    defaultLocal: 'bench-results/capacity.json',
    defaultEc2: 'bench-results/capacity.json',
    meaning: "each role's capacity per instance, as `pnpm bench:components` writes it",
    expected: 'a file path',
    schema: z.string().min(1),
  }),
} as const;

const BOUND_SPECS = Object.fromEntries(SCALED_ROLES.map((role) => [role, boundSpecs(role)])) as Record<
  ScaledRole,
  ReturnType<typeof boundSpecs>
>;

/** Every setting, in the order a help text or README lists them. */
export const AUTOSCALER_SETTINGS: readonly AutoscalerSettingInfo[] = [
  ...Object.values(SPECS).filter((s) => s !== SPECS.capacityFile),
  ...SCALED_ROLES.flatMap((role) => [BOUND_SPECS[role].min, BOUND_SPECS[role].max]),
  SPECS.capacityFile,
].map(({ name, defaultLocal, defaultEc2, meaning, expected }) => ({
  name,
  defaultLocal,
  defaultEc2,
  meaning,
  expected,
}));

function read<T>(
  s: Spec<T>,
  values: Readonly<Record<string, string | undefined>>,
  env: AutoscalerEnvironment,
): T {
  const given = values[s.name];
  const raw = given ?? (env === 'local' ? s.defaultLocal : s.defaultEc2);
  const parsed = s.schema.safeParse(raw);
  if (!parsed.success) {
    // JSON.stringify keeps a value with a newline or quote on the one line the CLI prints.
    throw new AutoscalerSettingsError(`${s.name}: got ${JSON.stringify(raw)}, expected ${s.expected}`);
  }
  return parsed.data;
}

/**
 * Reads every setting from `values` (e.g. `process.env`), with the defaults of `environment` for
 * those absent. Other names are ignored, since `process.env` holds everything else too, except an
 * `AUTOSCALE_` name it does not know: that is a typo which would otherwise be silently skipped.
 */
export function parseAutoscalerSettings(
  values: Readonly<Record<string, string | undefined>>,
  environment: AutoscalerEnvironment,
): AutoscalerSettings {
  const known = new Set(AUTOSCALER_SETTINGS.map((s) => s.name));
  const unknown = Object.keys(values).find((k) => k.startsWith('AUTOSCALE_') && !known.has(k));
  if (unknown !== undefined) {
    throw new AutoscalerSettingsError(
      `${unknown}: not a setting, expected one of ${[...known].filter((n) => n.startsWith('AUTOSCALE_')).join(', ')}`,
    );
  }
  const bounds = {} as Record<ScaledRole, RoleBounds>;
  for (const role of SCALED_ROLES) {
    const { min: minSpec, max: maxSpec } = BOUND_SPECS[role];
    const min = read(minSpec, values, environment);
    const max = read(maxSpec, values, environment);
    if (min > max) {
      // Blame the one the operator set: a given min against a default max is the min's fault.
      const blamed = values[maxSpec.name] === undefined ? minSpec : maxSpec;
      const expected =
        blamed === minSpec ? `at most ${maxSpec.name} (${max})` : `at least ${minSpec.name} (${min})`;
      throw new AutoscalerSettingsError(
        `${blamed.name}: got ${JSON.stringify(String(blamed === minSpec ? min : max))}, expected an integer ${expected}`,
      );
    }
    bounds[role] = { min, max };
  }
  return {
    intervalMs: read(SPECS.intervalMs, values, environment),
    targetUtilization: read(SPECS.targetUtilization, values, environment),
    tolerance: read(SPECS.tolerance, values, environment),
    stabilizationWindowMs: read(SPECS.stabilizationWindowMs, values, environment),
    acceptorGroupStabilizationWindowMs: read(SPECS.acceptorGroupStabilizationWindowMs, values, environment),
    readyTimeoutMs: read(SPECS.readyTimeoutMs, values, environment),
    bounds,
    capacityFile: read(SPECS.capacityFile, values, environment),
  };
}

/**
 * The policy's settings: the autoscaler's, with each role's measured capacity (a role the table
 * has none for, acceptor groups without an acceptor entry, is left out and so not scaled).
 */
export function policySettings(
  settings: AutoscalerSettings,
  capacity: Omit<CapacityTable, 'cpuQuota'>,
): PolicySettings {
  const measured = capacity as Readonly<Partial<Record<ScaledRole, RoleCapacity>>>;
  return {
    targetUtilization: settings.targetUtilization,
    tolerance: settings.tolerance,
    stabilizationWindowMs: settings.stabilizationWindowMs,
    roleStabilizationWindowMs: { 'acceptor-group': settings.acceptorGroupStabilizationWindowMs },
    readyTimeoutMs: settings.readyTimeoutMs,
    // Copies only the roles, so a capacity table's other fields (cpuQuota) stay out of the policy.
    capacity: Object.fromEntries(
      SCALED_ROLES.flatMap((role) => {
        const c = measured[role];
        return c === undefined ? [] : [[role, { messagesPerSecond: c.messagesPerSecond }]];
      }),
    ) as PolicySettings['capacity'],
    bounds: Object.fromEntries(SCALED_ROLES.map((role) => [role, { ...settings.bounds[role] }])) as Record<
      ScaledRole,
      RoleBounds
    >,
  };
}
