import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  acceptorLogDirOf,
  annaRoutingAt,
  DEFAULT_PORTS,
  DEFAULT_TOPOLOGY,
  holdsDurableState,
  hostPerProcessDirectory,
  matchmakerName,
  type ProcessSpec,
  parseMatchmakerName,
  planAddedMatchmaker,
  planCluster,
  planHostPerProcess,
} from '../src/index.ts';

const shape = { ...DEFAULT_TOPOLOGY, f: 1, groups: 2 };

describe('planCluster (one host)', () => {
  const plan = planCluster({ ...shape, basePort: 30000 });
  const all = [plan.directory as ProcessSpec, ...plan.processes];

  it('gives every process distinct ports from basePort up and metrics ports from basePort + 1000', () => {
    const ports = all.flatMap((p) => p.ports);
    expect(new Set(ports).size).toBe(ports.length);
    expect(Math.min(...ports)).toBe(30000);
    const metrics = plan.processes.map((p) => p.metricsPort);
    expect(new Set(metrics).size).toBe(metrics.length);
    expect(Math.min(...(metrics as number[]))).toBe(31000);
    expect(plan.annaRouting).toBe('tcp://127.0.0.1:30000');
  });

  it('plans no directory with an external one, and points every role at it', () => {
    const external = planCluster({ ...shape, basePort: 30000, directory: 'tcp://10.0.0.5:6450' });
    expect(external.directory).toBeNull();
    expect(external.annaRouting).toBe('tcp://10.0.0.5:6450');
    for (const p of external.processes) expect(p.env.ANNA_ROUTING).toBe('tcp://10.0.0.5:6450');
  });

  it("gives the directory the metrics port just below the roles' and passes it as --metrics-port", () => {
    expect(plan.directory?.metricsPort).toBe(30999);
    expect(plan.directory?.args?.slice(-2)).toEqual(['--metrics-port', '30999']);
    expect(all.flatMap((p) => p.ports)).not.toContain(30999);
  });

  it('puts metrics ports at metricsBasePort when one is given', () => {
    const narrow = planCluster({ ...shape, basePort: 30000, metricsBasePort: 30300 });
    const metrics = narrow.processes.map((p) => p.metricsPort as number);
    expect(Math.min(...metrics)).toBe(30300);
    expect(Math.max(...metrics)).toBe(30300 + narrow.processes.length - 1);
    expect(Math.max(...narrow.processes.flatMap((p) => p.ports))).toBeLessThan(30300);
  });

  it('lists roles in the seed launch order with 2f+1 acceptors per group', () => {
    const roles = plan.processes.map((p) => p.role);
    const firstIndex = (r: string) => roles.indexOf(r as never);
    const lastIndex = (r: string) => roles.lastIndexOf(r as never);
    expect(roles.filter((r) => r === 'acceptor')).toHaveLength(2 * 3);
    expect(lastIndex('acceptor')).toBeLessThan(firstIndex('matchmaker'));
    expect(lastIndex('matchmaker')).toBeLessThan(firstIndex('proxy-leader'));
    expect(lastIndex('unbatcher')).toBeLessThan(firstIndex('proposer'));
    expect(lastIndex('proposer')).toBeLessThan(firstIndex('batcher'));
  });

  it('puts each port in the environment variable its role reads', () => {
    const proposer = plan.processes.find((p) => p.name === 'proposer-1');
    expect(proposer?.env.PROPOSER_PORT).toBe(String(proposer?.ports[0]));
    expect(proposer?.env.PROPOSER_ELECTION_PORT).toBe(String(proposer?.ports[2]));
    expect(proposer?.env.ACCEPTOR_GROUPS).toBe('2');
    expect(proposer?.env.PRIVATE_IP).toBe('127.0.0.1');
    const acceptor = plan.processes.find((p) => p.name === 'acceptor-g1-a2');
    expect(acceptor?.env).toMatchObject({
      ACCEPTOR_GROUP_ID: '1',
      ACCEPTOR_ID: '2',
      INSTANCE: 'acceptor-g1-a2',
      DATA_FSYNC: 'true',
    });
    // Off only when asked for (a benchmark of the write path without the disk).
    const unsynced = planCluster({ ...shape, extraEnv: { DATA_FSYNC: 'false' } }).processes;
    expect(unsynced.find((p) => p.role === 'acceptor')?.env.DATA_FSYNC).toBe('false');
    expect(unsynced.find((p) => p.role === 'matchmaker')?.env.DATA_FSYNC).toBe('false');
  });

  it('plans 2f+1 matchmakers with the genesis shape, their own ids and ports', () => {
    const matchmakers = plan.processes.filter((p) => p.role === 'matchmaker');
    expect(matchmakers.map((p) => p.name)).toEqual(['matchmaker-0', 'matchmaker-1', 'matchmaker-2']);
    for (const [i, p] of matchmakers.entries()) {
      expect(p.env).toMatchObject({
        MATCHMAKER_ID: String(i),
        MATCHMAKER_PORT: String(p.ports[0]),
        F: '1',
        ACCEPTOR_GROUPS: '2',
        DATA_FSYNC: 'true',
      });
    }
    expect(planCluster({ ...shape, f: 2 }).processes.filter((p) => p.role === 'matchmaker')).toHaveLength(5);
  });

  it('plans an added matchmaker (a replacement) with a new id, no state until bootstrapped, existing on restart', () => {
    let port = 7000;
    const added = planAddedMatchmaker(
      { ...shape, dataDir: '/data' },
      plan.annaRouting,
      3,
      () => port++,
      () => 8000,
    );
    expect(added.name).toBe(matchmakerName(3));
    expect(parseMatchmakerName(added.name)).toBe(3);
    expect(parseMatchmakerName('matchmaker-x')).toBeNull();
    expect(added.env).toMatchObject({
      MATCHMAKER_ID: '3',
      MATCHMAKER_PORT: '7000',
      MATCHMAKER_STATE: 'replacement',
      DATA_DIR: '/data',
    });
    expect(added.restartEnv).toEqual({ MATCHMAKER_STATE: 'existing' });
    expect(added.metricsPort).toBe(8000);
  });

  it('adds the environment of roleExtraEnv to that role only, after extraEnv', () => {
    const processes = planCluster({
      ...shape,
      logLevel: 'warn',
      extraEnv: { RESEND_TIMEOUT_MS: '700' },
      roleExtraEnv: {
        acceptor: { LOG_LEVEL: 'info', DATA_FSYNC: 'false' },
        'proxy-leader': { TRACE_SAMPLE: '1' },
      },
    }).processes;
    const env = (role: string) => processes.find((p) => p.role === role)?.env;
    expect(env('acceptor')).toMatchObject({
      LOG_LEVEL: 'info',
      DATA_FSYNC: 'false',
      RESEND_TIMEOUT_MS: '700',
    });
    expect(env('proxy-leader')).toMatchObject({ LOG_LEVEL: 'warn', TRACE_SAMPLE: '1' });
    expect(env('proposer')).toMatchObject({ LOG_LEVEL: 'warn', RESEND_TIMEOUT_MS: '700' });
    expect(env('proposer')?.TRACE_SAMPLE).toBeUndefined();
  });

  it('starts every acceptor with ACCEPTOR_LOG_STATE=new and restarts it with existing; matchmakers with MATCHMAKER_STATE; no other role', () => {
    for (const p of plan.processes) {
      if (p.role === 'acceptor') {
        expect(p.env.ACCEPTOR_LOG_STATE, p.name).toBe('new');
        expect(p.restartEnv, p.name).toEqual({ ACCEPTOR_LOG_STATE: 'existing' });
      } else if (p.role === 'matchmaker') {
        expect(p.env.MATCHMAKER_STATE, p.name).toBe('new');
        expect(p.restartEnv, p.name).toEqual({ MATCHMAKER_STATE: 'existing' });
      } else {
        expect(p.env.ACCEPTOR_LOG_STATE, p.name).toBeUndefined();
        expect(p.restartEnv, p.name).toBeUndefined();
      }
    }
  });
});

describe("an acceptor's log directory", () => {
  it('is named from DATA_DIR, the key prefix (paxos if empty, unsafe characters as _), group and id', () => {
    const env = { DATA_DIR: '/data', ACCEPTOR_GROUP_ID: '1', ACCEPTOR_ID: '2' };
    expect(acceptorLogDirOf({ ...env, ANNA_KEY_PREFIX: 'run1-' })).toBe('/data/run1--g1-a2');
    expect(acceptorLogDirOf({ ...env, ANNA_KEY_PREFIX: '' })).toBe('/data/paxos-g1-a2');
    expect(acceptorLogDirOf({ ...env, ANNA_KEY_PREFIX: 'a/b c' })).toBe('/data/a_b_c-g1-a2');
    expect(acceptorLogDirOf({ ANNA_KEY_PREFIX: 'x', BATCH_SIZE: '40' })).toBeNull();
  });

  it('holds a log once it has a segment or a state file; missing, empty or leftover temporary files do not count', () => {
    const dir = path.join(mkdtempSync(path.join(tmpdir(), 'paxos-logdir-')), 'paxos-g0-a0');
    try {
      expect(holdsDurableState(dir)).toBe(false);
      mkdirSync(dir);
      expect(holdsDurableState(dir)).toBe(false);
      writeFileSync(path.join(dir, '000000000000.seg.tmp'), '');
      expect(holdsDurableState(dir)).toBe(false);
      writeFileSync(path.join(dir, '000000000000.seg'), '');
      expect(holdsDurableState(dir)).toBe(true);
    } finally {
      rmSync(path.dirname(dir), { recursive: true, force: true });
    }
  });
});

describe('planHostPerProcess (a host per process, as on EC2)', () => {
  const routing = annaRoutingAt('10.0.0.5');
  const processes = planHostPerProcess({
    ...shape,
    f: 2,
    groups: 3,
    annaRouting: routing,
    dataDir: '/var/lib/paxos',
  });

  it('uses the same names and roles as the local plan', () => {
    const local = planCluster({ ...shape, f: 2, groups: 3 }).processes;
    expect(processes.map((p) => [p.name, p.role])).toEqual(local.map((p) => [p.name, p.role]));
    expect(processes.filter((p) => p.role === 'acceptor')).toHaveLength(3 * 5);
    expect(processes.filter((p) => p.role === 'matchmaker').map((p) => p.env.MATCHMAKER_ID)).toEqual([
      '0',
      '1',
      '2',
      '3',
      '4',
    ]);
  });

  it('listens on each role default port, serves metrics on 16000 and leaves PRIVATE_IP to the host', () => {
    for (const p of processes) {
      expect(p.metricsPort).toBe(16000);
      expect(p.env.METRICS_PORT).toBe('16000');
      expect(p.env.ANNA_ROUTING).toBe('tcp://10.0.0.5:6450');
      expect(p.env.PRIVATE_IP).toBeUndefined();
      for (const [key, value] of Object.entries(p.env)) {
        if (key in DEFAULT_PORTS)
          expect(Number(value)).toBe(DEFAULT_PORTS[key as keyof typeof DEFAULT_PORTS]);
      }
    }
    expect(processes.find((p) => p.role === 'proxy-leader')?.ports).toEqual([12100, 12200]);
  });

  it('has a directory that binds every interface on the Anna ports', () => {
    const d = hostPerProcessDirectory();
    expect(d.args?.slice(0, 6)).toEqual(['--host', '0.0.0.0', '--port', '6450', '--storage-port', '6200']);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the host expands it
    expect(d.args?.slice(6)).toEqual(['--public-host', '${PRIVATE_IP}', '--metrics-port', '16000']);
    expect(d.ports).toEqual([6450, 6200]);
    expect(d.metricsPort).toBe(16000);
  });
});
