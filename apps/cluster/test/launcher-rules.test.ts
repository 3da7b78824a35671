import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  acceptorLogDirOf,
  DEFAULT_TOPOLOGY,
  drainTimeoutOf,
  LOG_LEVELS,
  planCluster,
  stateDirOf,
} from '@paxos/launcher';
import {
  acceptorLogDir,
  COMMON_SETTINGS,
  loadSettings,
  logLevel,
  matchmakerStoreDir,
  resolveDrainTimeoutMs,
} from '@paxos/runtime';
import { describe, expect, it } from 'vitest';
import { firstStarts } from '../src/cluster.ts';

describe('drain timeout', () => {
  it('is the same for the launcher (its default stop grace) as for the process it stops', () => {
    const envs: Record<string, string>[] = [
      {},
      { DIRECTORY_POLL_MS: '300' },
      { DIRECTORY_POLL_MS: '3000' },
      { DIRECTORY_POLL_MS: '1400', DRAIN_TIMEOUT_MS: '0' },
      { DIRECTORY_POLL_MS: '300', DRAIN_TIMEOUT_MS: '20000' },
      { DRAIN_TIMEOUT_MS: '500' },
    ];
    for (const env of envs) {
      const settings = loadSettings('p', 'd', COMMON_SETTINGS, [], {
        ANNA_ROUTING: 'tcp://127.0.0.1:1',
        ...env,
      });
      expect(drainTimeoutOf(env), JSON.stringify(env)).toBe(resolveDrainTimeoutMs(settings));
    }
  });
});

describe('log levels', () => {
  it("are the same for the launcher CLIs' --log-level as for the role processes' LOG_LEVEL", () => {
    expect([...LOG_LEVELS]).toEqual(logLevel().options);
  });
});

describe("an acceptor's log directory", () => {
  it('is the same for the launcher (which starts it new or existing) as for the acceptor', () => {
    for (const cluster of ['', 'run1-', 'a/b c', 'local.x_y']) {
      const env = { DATA_DIR: '/data', ANNA_KEY_PREFIX: cluster, ACCEPTOR_GROUP_ID: '3', ACCEPTOR_ID: '1' };
      expect(acceptorLogDirOf(env), cluster).toBe(
        acceptorLogDir('/data', { cluster: cluster || 'paxos', groupId: 3, acceptorId: 1 }),
      );
    }
  });
});

describe("a matchmaker's state directory", () => {
  it('is the same for the launcher (which starts it new or existing) as for the matchmaker', () => {
    for (const cluster of ['', 'run1-', 'a/b c']) {
      const env = { DATA_DIR: '/data', ANNA_KEY_PREFIX: cluster, MATCHMAKER_ID: '2' };
      expect(stateDirOf(env), cluster).toBe(
        matchmakerStoreDir('/data', { cluster: cluster || 'paxos', matchmakerId: 2 }),
      );
    }
  });
});

describe('LocalCluster.up on a data directory', () => {
  it('starts every matchmaker new in a fresh one, and existing (acceptors too) where a matchmaker state of the cluster is there', () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'paxos-first-starts-'));
    try {
      const { processes } = planCluster({ ...DEFAULT_TOPOLOGY, keyPrefix: 'again-', dataDir });
      const states = () =>
        firstStarts(processes)
          .filter((p) => p.role === 'matchmaker' || p.role === 'acceptor')
          .map((p) => p.env.MATCHMAKER_STATE ?? p.env.ACCEPTOR_LOG_STATE);
      expect(states()).toEqual(Array(9).fill('new'));
      mkdirSync(path.join(dataDir, 'again--m1'));
      writeFileSync(path.join(dataDir, 'again--m1', 'matchmaker'), '');
      expect(states()).toEqual(Array(9).fill('existing'));
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('starts every acceptor new in a fresh one, and existing where an acceptor log of the cluster is there', () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'paxos-first-starts-'));
    try {
      const { processes } = planCluster({ ...DEFAULT_TOPOLOGY, keyPrefix: 'again-', dataDir });
      const states = () =>
        firstStarts(processes)
          .filter((p) => p.role === 'acceptor')
          .map((p) => p.env.ACCEPTOR_LOG_STATE);
      expect(states()).toEqual(Array(6).fill('new'));
      // Another cluster's log (another key prefix) in the same directory changes nothing.
      mkdirSync(path.join(dataDir, 'other--g0-a0'));
      writeFileSync(path.join(dataDir, 'other--g0-a0', '000000000000.seg'), '');
      expect(states()).toEqual(Array(6).fill('new'));
      // One log of this cluster: it ran here before, so every acceptor has (a log deleted since is refused).
      mkdirSync(path.join(dataDir, 'again--g1-a2'));
      writeFileSync(path.join(dataDir, 'again--g1-a2', '000000000000.seg'), '');
      expect(states()).toEqual(Array(6).fill('existing'));
      // Nothing else changes, and no other role gets the setting.
      const started = firstStarts(processes);
      for (const [i, p] of started.entries()) {
        const { ACCEPTOR_LOG_STATE: _, MATCHMAKER_STATE: _m, ...rest } = p.env;
        const { ACCEPTOR_LOG_STATE: __, MATCHMAKER_STATE: __m, ...planned } = processes[i]?.env ?? {};
        expect(rest).toEqual(planned);
        if (p.role !== 'acceptor') expect(p.env.ACCEPTOR_LOG_STATE).toBeUndefined();
        if (p.role !== 'matchmaker') expect(p.env.MATCHMAKER_STATE).toBeUndefined();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
