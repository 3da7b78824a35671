import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import {
  LOAD_SIGNALS,
  PROCESS_ROLES,
  type ProcessRole,
  type RoleCapacity,
  SCALED_ROLES,
  type ScaledRole,
} from './types.ts';

/**
 * The capacity table `pnpm bench:components` writes (bench-results/capacity.json): what one
 * instance of each role handles between mocks on the machine it ran on. The policy sizes roles
 * against it, so a table that is missing a role or holds a rate that is not positive is refused
 * rather than read as "infinitely fast" or "cannot serve". The acceptor's entry is optional:
 * without it, acceptor groups are not scaled; with it, it is checked like the others.
 */

export type CapacityTable = Readonly<Record<ProcessRole, RoleCapacity>> & {
  /** One acceptor's capacity (capacity.json's `acceptor`), against a group's busiest member. */
  readonly 'acceptor-group'?: RoleCapacity;
  /**
   * The CPU share each role process was held to while measured (BENCH_CPU_QUOTA); null or absent
   * when unlimited. A cluster run with another quota has other capacities.
   */
  readonly cpuQuota: number | null;
};

export class CapacityError extends Error {
  override readonly name = 'CapacityError';
}

const rate = z.number().finite().positive();
const roleEntry = (role: ScaledRole) => {
  const entry = z.looseObject({ [LOAD_SIGNALS[role].capacity]: rate });
  return (PROCESS_ROLES as readonly ScaledRole[]).includes(role) ? entry : entry.optional();
};

// Only what the policy uses is checked; the rest (date, machine, the roles it does not scale) is
// the benchmark's record and may grow.
const schema = z.looseObject({
  roles: z.looseObject(
    Object.fromEntries(SCALED_ROLES.map((role) => [LOAD_SIGNALS[role].entry, roleEntry(role)])) as Record<
      string,
      ReturnType<typeof roleEntry>
    >,
  ),
  cpuQuota: z.number().finite().positive().nullable().optional(),
});

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function valueAt(json: unknown, path: readonly PropertyKey[]): unknown {
  let at = json;
  for (const key of path) {
    if (typeof at !== 'object' || at === null) return undefined;
    at = (at as Record<PropertyKey, unknown>)[key];
  }
  return at;
}

function problem(json: unknown, issue: z.core.$ZodIssue): string {
  const path = issue.path;
  const where = path.map(String).join('.');
  const value = valueAt(json, path);
  if (path[0] === 'roles' && path.length === 2 && value === undefined) {
    return `roles.${String(path[1])} is missing (was \`pnpm bench:components\` run with BENCH_ROLES leaving it out?)`;
  }
  if (path[0] === 'roles' && (path[2] === 'messagesPerSecond' || path[2] === 'commandsPerSecond')) {
    const unit = path[2] === 'messagesPerSecond' ? 'messages' : 'commands';
    return `${where}: expected a positive number of ${unit} per second, got ${describe(value)}`;
  }
  if (path[0] === 'cpuQuota') return `cpuQuota: expected a positive number or null, got ${describe(value)}`;
  if (path.length === 0) return `expected a JSON object, got ${describe(value)}`;
  return `${where}: expected an object, got ${describe(value)}`;
}

/**
 * Validates a parsed capacity.json. `source` names it in errors (the file's path). Throws
 * CapacityError with one line naming the source and the first problem.
 */
export function parseCapacity(json: unknown, source: string): CapacityTable {
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const [first] = parsed.error.issues;
    throw new CapacityError(`${source}: ${first ? problem(json, first) : 'not a capacity table'}`);
  }
  const table = Object.fromEntries(
    SCALED_ROLES.flatMap((role) => {
      const { entry, capacity } = LOAD_SIGNALS[role];
      const measured = parsed.data.roles[entry]?.[capacity] as number | undefined;
      return measured === undefined ? [] : [[role, { messagesPerSecond: measured }]];
    }),
  ) as Record<ProcessRole, RoleCapacity> & Partial<Record<ScaledRole, RoleCapacity>>;
  return { ...table, cpuQuota: parsed.data.cpuQuota ?? null };
}

/** Reads and validates a capacity file; every failure is a CapacityError of one line. */
export async function loadCapacity(file: string): Promise<CapacityTable> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new CapacityError(
        `${file}: no capacity table; run \`pnpm bench:components\` (BENCH_CPU_QUOTA=… to match --cpu-quota) first`,
      );
    }
    throw new CapacityError(`${file}: cannot be read (${code ?? (err as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CapacityError(`${file}: not JSON (${(err as Error).message.split('\n')[0]})`);
  }
  return parseCapacity(json, file);
}
