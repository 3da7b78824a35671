import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CapacityError, loadCapacity, parseCapacity } from '../src/capacity.ts';

/** What `pnpm bench:components` writes (apps/cluster/src/bench-components.ts). */
function benchOutput(): Record<string, unknown> {
  return {
    date: '2025-01-01T00:00:00.000Z',
    batchSize: 40,
    machine: { cpus: 16, model: 'test' },
    rawZmqMessagesPerSecond: 400_000,
    roles: {
      batcher: { commandsPerSecond: 200_000, messagesPerSecond: 5000 },
      proposer: { commandsPerSecond: 150_000, messagesPerSecond: 3750 },
      'proxy-leader': { commandsPerSecond: 120_000, messagesPerSecond: 9000 },
      acceptor: { commandsPerSecond: 300_000, messagesPerSecond: 7500 },
      unbatcher: { commandsPerSecond: 250_000, messagesPerSecond: 6250 },
    },
  };
}

function withRoles(change: (roles: Record<string, unknown>) => void): Record<string, unknown> {
  const json = benchOutput();
  change(json.roles as Record<string, unknown>);
  return json;
}

function errorOf(json: unknown): Error {
  try {
    parseCapacity(json, 'bench-results/capacity.json');
  } catch (err) {
    return err as Error;
  }
  throw new Error('no error');
}

describe('parseCapacity', () => {
  it("reads each scaled role's capacity in the unit of its load signal; cpuQuota is null when absent", () => {
    // Batchers, proxy leaders and acceptors (a group against one acceptor) by messages handled;
    // unbatchers by replies sent, one per command.
    expect(parseCapacity(benchOutput(), 'x.json')).toEqual({
      batcher: { messagesPerSecond: 5000 },
      'proxy-leader': { messagesPerSecond: 9000 },
      unbatcher: { messagesPerSecond: 250_000 },
      'acceptor-group': { messagesPerSecond: 7500 },
      cpuQuota: null,
    });
  });

  it('accepts cpuQuota as a number or null', () => {
    expect(parseCapacity({ ...benchOutput(), cpuQuota: 0.5 }, 'x.json').cpuQuota).toBe(0.5);
    expect(parseCapacity({ ...benchOutput(), cpuQuota: null }, 'x.json').cpuQuota).toBeNull();
  });

  it('needs only the process roles (a run with BENCH_ROLES may leave the others out); without the acceptor, no acceptor-group entry', () => {
    const json = withRoles((roles) => {
      delete roles.proposer;
      delete roles.acceptor;
    });
    const table = parseCapacity(json, 'x.json');
    expect(table.unbatcher.messagesPerSecond).toBe(250_000);
    expect(table).not.toHaveProperty('acceptor-group');
  });

  it.each([
    [
      'a missing role',
      withRoles((roles) => delete roles.unbatcher),
      'bench-results/capacity.json: roles.unbatcher is missing (was `pnpm bench:components` run with BENCH_ROLES leaving it out?)',
    ],
    [
      'a zero rate',
      withRoles((roles) => Object.assign(roles, { batcher: { messagesPerSecond: 0 } })),
      'bench-results/capacity.json: roles.batcher.messagesPerSecond: expected a positive number of messages per second, got 0',
    ],
    [
      'a negative rate',
      withRoles((roles) => Object.assign(roles, { 'proxy-leader': { messagesPerSecond: -3 } })),
      'bench-results/capacity.json: roles.proxy-leader.messagesPerSecond: expected a positive number of messages per second, got -3',
    ],
    [
      'a rate as text',
      withRoles((roles) => Object.assign(roles, { unbatcher: { commandsPerSecond: '6250' } })),
      'bench-results/capacity.json: roles.unbatcher.commandsPerSecond: expected a positive number of commands per second, got "6250"',
    ],
    [
      'a role without a rate',
      withRoles((roles) => Object.assign(roles, { batcher: { commandsPerSecond: 1 } })),
      'bench-results/capacity.json: roles.batcher.messagesPerSecond: expected a positive number of messages per second, got nothing',
    ],
    [
      'an acceptor entry that is there but without a positive rate (it is checked, not skipped)',
      withRoles((roles) => Object.assign(roles, { acceptor: { messagesPerSecond: 0 } })),
      'bench-results/capacity.json: roles.acceptor.messagesPerSecond: expected a positive number of messages per second, got 0',
    ],
    ['no roles', { date: 'x' }, 'bench-results/capacity.json: roles: expected an object, got nothing'],
    [
      'a bad cpuQuota',
      { ...benchOutput(), cpuQuota: 'half' },
      'bench-results/capacity.json: cpuQuota: expected a positive number or null, got "half"',
    ],
    ['not an object', [1, 2], 'bench-results/capacity.json: expected a JSON object, got [1,2]'],
  ])('refuses %s with one line naming the file', (_, json, message) => {
    const err = errorOf(json);
    expect(err).toBeInstanceOf(CapacityError);
    expect(err.message).toBe(message);
  });
});

describe('loadCapacity', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'capacity-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads and validates a file', async () => {
    const file = path.join(dir, 'ok.json');
    writeFileSync(file, JSON.stringify({ ...benchOutput(), cpuQuota: 1 }));
    await expect(loadCapacity(file)).resolves.toMatchObject({
      batcher: { messagesPerSecond: 5000 },
      cpuQuota: 1,
    });
  });

  it('says how to make the file when it does not exist', async () => {
    const file = path.join(dir, 'missing.json');
    await expect(loadCapacity(file)).rejects.toThrow(
      new CapacityError(
        `${file}: no capacity table; run \`pnpm bench:components\` (BENCH_CPU_QUOTA=… to match --cpu-quota) first`,
      ),
    );
  });

  it('names the file when it is not JSON or not a capacity table', async () => {
    const notJson = path.join(dir, 'bad.json');
    writeFileSync(notJson, '{ "roles": ');
    const err = await loadCapacity(notJson).catch((e: Error) => e);
    expect(err).toBeInstanceOf(CapacityError);
    expect((err as Error).message).toMatch(
      new RegExp(`^${notJson.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not JSON \\(.+\\)$`),
    );
    const noRoles = path.join(dir, 'empty.json');
    writeFileSync(noRoles, '{}');
    await expect(loadCapacity(noRoles)).rejects.toThrow(`${noRoles}: roles: expected an object, got nothing`);
  });

  it('names the file when it cannot be read', async () => {
    const err = await loadCapacity(dir).catch((e: Error) => e);
    expect(err).toBeInstanceOf(CapacityError);
    expect((err as Error).message).toBe(`${dir}: cannot be read (EISDIR)`);
  });
});
