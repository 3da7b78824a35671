import { describe, expect, it } from 'vitest';
import { filesystemName } from '../src/bench-cluster.ts';
import {
  type DurabilityRow,
  type DurabilitySystem,
  durabilityFigures,
  FIGURE_HEADER,
  figureRows,
  RESULT_HEADER,
  resultRows,
} from '../src/durability-figures.ts';

function row(
  system: DurabilitySystem,
  clients: number,
  opsPerSecond: number,
  p50Ms: number | null,
  p99Ms: number | null = null,
): DurabilityRow {
  return {
    system,
    clients,
    procs: 1,
    opsPerSecond,
    p50Ms,
    p99Ms,
    p999Ms: null,
    acknowledged: opsPerSecond * 10,
    seconds: 10,
  };
}

const full = [
  row('paxos-fsync-off', 1, 700, 1.3, 4),
  row('paxos-fsync-off', 128, 26_000, 4.3, 13),
  row('paxos-fsync-on', 1, 400, 2.05, 6.5),
  row('paxos-fsync-on', 128, 20_000, 5.9, 17),
  row('etcd', 1, 500, 1.9, 3),
  row('etcd', 128, 5_021, 24, 60),
];

describe('durabilityFigures', () => {
  it('takes the throughput ratios at the highest level and the added latency at the lowest', () => {
    const f = durabilityFigures(full);
    expect(f.fsyncOnToOff).toEqual({ clients: 128, value: 0.769, target: { min: 0.7 }, meets: true });
    expect(f.fsyncOnToEtcd).toEqual({ clients: 128, value: 3.983, target: { min: 3 }, meets: true });
    expect(f.addedP50Ms).toEqual({ clients: 1, value: 0.75, target: { max: 1 }, meets: true });
    expect(f.addedP99Ms).toEqual({ clients: 1, value: 2.5, target: null, meets: null });
  });

  it('says when a figure misses its target', () => {
    const f = durabilityFigures([
      row('paxos-fsync-off', 1, 700, 1.3),
      row('paxos-fsync-off', 128, 26_000, 4.3),
      row('paxos-fsync-on', 1, 300, 2.5),
      row('paxos-fsync-on', 128, 13_000, 9),
      row('etcd', 128, 5_000, 24),
    ]);
    expect(f.fsyncOnToOff.meets).toBe(false);
    expect(f.fsyncOnToOff.value).toBe(0.5);
    expect(f.fsyncOnToEtcd).toMatchObject({ value: 2.6, meets: false });
    expect(f.addedP50Ms).toMatchObject({ value: 1.2, meets: false });
  });

  it('uses only levels both systems ran, and none when etcd was skipped', () => {
    const f = durabilityFigures([
      row('paxos-fsync-off', 1, 700, 1.3),
      row('paxos-fsync-off', 16, 6_000, 2),
      row('paxos-fsync-off', 128, 26_000, 4.3),
      row('paxos-fsync-on', 16, 5_000, 3),
      row('paxos-fsync-on', 128, 21_000, 6),
    ]);
    expect(f.fsyncOnToOff.clients).toBe(128);
    // fsync on has no 1-client row: the lowest shared level is 16.
    expect(f.addedP50Ms).toMatchObject({ clients: 16, value: 1 });
    expect(f.addedP50Ms.meets).toBe(true);
    expect(f.fsyncOnToEtcd).toEqual({ clients: null, value: null, target: { min: 3 }, meets: null });
  });

  it('has no value where a throughput is 0 or a latency is missing', () => {
    const f = durabilityFigures([
      row('paxos-fsync-off', 1, 0, null),
      row('paxos-fsync-on', 1, 10, 2),
      row('etcd', 1, 0, null),
    ]);
    expect(f.fsyncOnToOff).toMatchObject({ clients: 1, value: null, meets: null });
    expect(f.fsyncOnToEtcd).toMatchObject({ clients: 1, value: null, meets: null });
    expect(f.addedP50Ms).toMatchObject({ clients: 1, value: null, meets: null });
  });
});

describe('tables', () => {
  it('lists the results by client level, then fsync off, fsync on, etcd', () => {
    const rows = resultRows([...full].reverse());
    expect(rows.map((r) => [r[0], r[1]])).toEqual([
      ['paxos, fsync off', 1],
      ['paxos, fsync on', 1],
      ['etcd, 3 members', 1],
      ['paxos, fsync off', 128],
      ['paxos, fsync on', 128],
      ['etcd, 3 members', 128],
    ]);
    expect(rows[0]).toEqual(['paxos, fsync off', 1, 1, 700, '1.30', '4.00', null]);
    for (const r of rows) expect(r).toHaveLength(RESULT_HEADER.length);
  });

  it('shows each figure with its level, value, target and whether it is met', () => {
    const rows = figureRows(durabilityFigures(full));
    expect(rows).toEqual([
      ['fsync on / fsync off, commands/s', 128, '0.769', '>= 0.7', 'yes'],
      ['fsync on / etcd, commands/s over puts/s', 128, '3.983', '>= 3', 'yes'],
      ['added p50 latency, ms (fsync on - off)', 1, '0.750', '<= 1', 'yes'],
      ['added p99 latency, ms (fsync on - off)', 1, '2.500', null, null],
    ]);
    for (const r of rows) expect(r).toHaveLength(FIGURE_HEADER.length);
    const skipped = figureRows(durabilityFigures(full.filter((r) => r.system !== 'etcd')));
    expect(skipped[1]).toEqual(['fsync on / etcd, commands/s over puts/s', null, null, '>= 3', null]);
  });
});

describe('filesystemName', () => {
  it("names the filesystems whose fsync cost differs, and shows any other's magic number", () => {
    expect(filesystemName(0xef53)).toBe('ext4');
    expect(filesystemName(0x01021994)).toBe('tmpfs');
    expect(filesystemName(0x58465342)).toBe('xfs');
    expect(filesystemName(0x1234)).toBe('0x1234');
  });
});
