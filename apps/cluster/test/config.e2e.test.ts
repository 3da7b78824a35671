import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { AcceptorLog, nodeStorage, scanLog, segmentName } from '@paxos/acceptor-log';
import { DEFAULT_PORTS, type RoleName, roleBinary } from '@paxos/launcher';
import { afterEach, describe, expect, it } from 'vitest';

function run(role: RoleName, env: Record<string, string>, args: string[] = []) {
  const result = spawnSync(process.execPath, [roleBinary(role), ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { code: result.status, stderr: result.stderr.trim() };
}

const ok = { ANNA_ROUTING: 'tcp://127.0.0.1:1', METRICS_PORT: '0' };

const cases: [RoleName, Record<string, string>, string[], RegExp][] = [
  [
    'acceptor',
    { METRICS_PORT: '0', ACCEPTOR_GROUP_ID: '0', ACCEPTOR_ID: '0' },
    [],
    /ANNA_ROUTING \(--anna-routing\) is required/,
  ],
  [
    'acceptor',
    { ...ok, ACCEPTOR_GROUP_ID: '-1', ACCEPTOR_ID: '0' },
    [],
    /ACCEPTOR_GROUP_ID \(--group-id\): got "-1", expected an integer >= 0/,
  ],
  ['acceptor', { ...ok, ACCEPTOR_GROUP_ID: '0' }, [], /ACCEPTOR_ID \(--acceptor-id\) is required/],
  [
    'acceptor',
    { ...ok, ACCEPTOR_GROUP_ID: '0', ACCEPTOR_ID: '0', DATA_FSYNC: 'maybe' },
    [],
    /DATA_FSYNC .*"maybe", expected true or false/,
  ],
  [
    'acceptor',
    { ...ok, ACCEPTOR_GROUP_ID: '0', ACCEPTOR_ID: '0', ACCEPTOR_LOG_STATE: 'restored' },
    [],
    /^paxos-acceptor: ACCEPTOR_LOG_STATE \(--log-state\): got "restored", expected one of new, existing, replacement$/,
  ],
  [
    'matchmaker',
    { ...ok, MATCHMAKER_ID: '0', MATCHMAKER_STATE: 'restored' },
    [],
    /^paxos-matchmaker: MATCHMAKER_STATE \(--state\): got "restored", expected one of new, existing, replacement$/,
  ],
  ['matchmaker', { ...ok }, [], /^paxos-matchmaker: MATCHMAKER_ID \(--matchmaker-id\) is required/],
  ['proposer', { ...ok, F: 'one' }, [], /F \(--f\): got "one", expected an integer >= 0/],
  ['proposer', { ...ok }, ['--election-timeout-ms', '0'], /ELECTION_TIMEOUT_MS .*got "0"/],
  [
    'proposer',
    { ...ok, ANNA_ROUTING: '10.0.0.1' },
    [],
    /ANNA_ROUTING .*got "10.0.0.1", expected tcp:\/\/host:port/,
  ],
  [
    'batcher',
    { ...ok, BATCH_SIZE: '0' },
    [],
    /BATCH_SIZE \(--batch-size\): got "0", expected an integer >= 1/,
  ],
  ['batcher', { ...ok, MAX_READS_PER_SOCKET_PER_POLL: 'lots' }, [], /MAX_READS_PER_SOCKET_PER_POLL .*"lots"/],
  [
    'proxy-leader',
    { ...ok, PROXY_LEADER_PORT: '70000' },
    [],
    /PROXY_LEADER_PORT \(--port\): got "70000", expected a TCP port 0-65535/,
  ],
  ['unbatcher', { ...ok }, ['--port', 'abc'], /UNBATCHER_PORT \(--port\): got "abc"/],
  ['unbatcher', { ...ok, LOG_LEVEL: 'chatty' }, [], /LOG_LEVEL .*"chatty"/],
  ['batcher', { ...ok, TRACE_SAMPLE: '-1' }, [], /TRACE_SAMPLE \(--trace-sample\): got "-1"/],
  [
    'proxy-leader',
    { ...ok, TRACE_SAMPLE: '1', LOG_LEVEL: 'warn' },
    [],
    /TRACE_SAMPLE .*LOG_LEVEL "warn", expected LOG_LEVEL info/,
  ],
  ['client', { ...ok, NUM_CLIENTS: '0' }, [], /NUM_CLIENTS \(--clients\): got "0"/],
  ['client', { ...ok }, ['--bogus'], /unknown option '--bogus'/],
];

describe('bad settings', () => {
  it.each(cases)('%s with %j %j: one clear line and exit code 2', (role, env, args, message) => {
    const { code, stderr } = run(role, env, args);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr.split('\n')).toHaveLength(1);
  });

  it('--help prints every setting with its environment variable and exits 0', () => {
    const result = spawnSync(process.execPath, [roleBinary('batcher'), '--help'], { encoding: 'utf8' });
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/--batch-size <value>.*env BATCH_SIZE/);
  });
});

describe('a matchmaker started existing with no state', () => {
  it('is refused before it binds anything: exit 2, one line naming the directory, nothing created', () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'paxos-mm-config-'));
    try {
      const { code, stderr } = run('matchmaker', {
        ...ok,
        MATCHMAKER_ID: '1',
        MATCHMAKER_STATE: 'existing',
        DATA_DIR: dataDir,
        ANNA_KEY_PREFIX: 'cfg-',
      });
      const dir = path.join(dataDir, 'cfg--m1');
      expect(code).toBe(2);
      expect(stderr).toBe(
        `paxos-matchmaker: matchmaker state ${dir} is missing, but MATCHMAKER_STATE (--state) is "existing": this matchmaker (cluster "cfg-" matchmaker 1) has run before, and starting it from genesis would forget the configurations it recorded, which can let a leader skip one that holds chosen values. Restore the state there; or, if it is lost for good, start it with MATCHMAKER_STATE=replacement (--state replacement), which answers nothing until a matchmaker reconfiguration bootstraps it`,
      );
      expect(existsSync(dir)).toBe(false);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('DEFAULT_PORTS (what a host per process listens on, and what the security group opens)', () => {
  const help = (role: RoleName) =>
    spawnSync(process.execPath, [roleBinary(role), '--help'], { encoding: 'utf8' }).stdout;

  it.each([
    'acceptor',
    'matchmaker',
    'proposer',
    'batcher',
    'proxy-leader',
    'unbatcher',
    'client',
  ] as RoleName[])('agree with the defaults %s prints in --help', (role) => {
    const defaults = [...help(role).matchAll(/env ([A-Z_]+_PORT); default "(\d+)"/g)];
    expect(defaults.length).toBeGreaterThan(0);
    for (const [, env, value] of defaults) {
      expect(DEFAULT_PORTS[env as keyof typeof DEFAULT_PORTS], env).toBe(Number(value));
    }
  });

  it('agree with the directory defaults', () => {
    const text = help('directory').replace(/\s+/g, ' ');
    expect(text).toContain(
      `routing (key-address) port; 0 picks a free port (default: ${DEFAULT_PORTS.ANNA_ROUTING_PORT})`,
    );
    expect(text).toContain(
      `storage (key-request) port; 0 picks a free port (default: ${DEFAULT_PORTS.ANNA_STORAGE_PORT})`,
    );
  });
});

describe('acceptor log at start-up', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  /** A DATA_DIR with a log for `acceptorId` of group 0 written in the directory `name`. */
  function dataDirWithLog(name: string, acceptorId: number): string {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'paxos-acceptor-start-'));
    dirs.push(dataDir);
    const { log } = AcceptorLog.open(nodeStorage(path.join(dataDir, name)), {
      identity: { cluster: 'paxos', groupId: 0, acceptorId },
      fsync: true,
    });
    log.promised({ round: 1, proposerId: 0 }, { id: 1, groups: [0], acceptorIds: [] });
    for (let slot = 0; slot < 3; slot++)
      log.accepted({ slot, ballot: { round: 1, proposerId: 0 }, value: { kind: 'noop' } }, 0, {
        id: 1,
        groups: [0],
        acceptorIds: [],
      });
    log.close();
    return dataDir;
  }
  const env = (dataDir: string) => ({ ...ok, ACCEPTOR_GROUP_ID: '0', ACCEPTOR_ID: '0', DATA_DIR: dataDir });

  it("refuses another acceptor's log: one line naming both identities, exit 2", () => {
    const dataDir = dataDirWithLog('paxos-g0-a0', 1); // acceptor 1's log where acceptor 0's belongs
    const { code, stderr } = run('acceptor', env(dataDir));
    expect(code).toBe(2);
    expect(stderr).toBe(
      `paxos-acceptor: ${dataDir}/paxos-g0-a0/000000000000.seg belongs to cluster "paxos" group 0 acceptor 1, not to this acceptor (cluster "paxos" group 0 acceptor 0): refusing to start on another acceptor's log`,
    );
  });

  it('ACCEPTOR_LOG_STATE=existing refuses a missing log, replacement one that is there: one line each, exit 2', () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'paxos-acceptor-start-'));
    dirs.push(dataDir);
    const missing = run('acceptor', { ...env(dataDir), ACCEPTOR_LOG_STATE: 'existing' });
    expect(missing.code).toBe(2);
    expect(missing.stderr.split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(
      `paxos-acceptor: acceptor log ${dataDir}/paxos-g0-a0 is missing, but ACCEPTOR_LOG_STATE (--log-state) is "existing": this acceptor (cluster "paxos" group 0 acceptor 0) has run before`,
    );
    expect(missing.stderr).toContain(
      'start this acceptor as a replacement with ACCEPTOR_LOG_STATE=replacement',
    );
    expect(existsSync(path.join(dataDir, 'paxos-g0-a0'))).toBe(false);

    const withLog = dataDirWithLog('paxos-g0-a0', 0);
    const present = run('acceptor', env(withLog), ['--log-state', 'replacement']);
    expect(present.code).toBe(2);
    expect(present.stderr.split('\n')).toHaveLength(1);
    expect(present.stderr).toContain(
      `but ${withLog}/paxos-g0-a0 already holds a log (1 segment): refusing to discard it. Move it out of the way`,
    );
  });

  it('ACCEPTOR_LOG_STATE=replacement starts on a new log and logs a warning saying when that is safe', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'paxos-acceptor-start-'));
    dirs.push(dataDir);
    // No directory answers there: the acceptor waits to register, after the warning.
    const child = spawn(process.execPath, [roleBinary('acceptor')], {
      env: {
        PATH: process.env.PATH ?? '',
        ...env(dataDir),
        ACCEPTOR_PORT: '0',
        ACCEPTOR_LOG_STATE: 'replacement',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      const lines = createInterface({ input: child.stderr as NodeJS.ReadableStream });
      let warning: { level: number; msg: string } | undefined;
      for await (const line of lines) {
        const entry = JSON.parse(line) as { level: number; msg: string };
        if (entry.level === 40) {
          warning = entry;
          break;
        }
      }
      expect(warning?.msg).toMatch(
        /^started as a replacement on a new, empty log: .* safe only while at most f acceptors of group 0 are replaced/,
      );
      expect(readdirSync(path.join(dataDir, 'paxos-g0-a0'))).toEqual(['000000000000.seg']);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('refuses a damaged log: one line naming the file and byte offset, exit 1', () => {
    const dataDir = dataDirWithLog('paxos-g0-a0', 0);
    const second = [...scanLog(nodeStorage(path.join(dataDir, 'paxos-g0-a0')))].filter(
      (i) => i.type === 'record',
    )[1];
    if (second?.type !== 'record') throw new Error('no second record');
    // One byte of the second record's payload changed in place: bit rot, not a crash.
    const file = path.join(dataDir, 'paxos-g0-a0', segmentName(0));
    const bytes = readFileSync(file);
    bytes[second.offset + 20] = (bytes[second.offset + 20] ?? 0) ^ 0xff;
    writeFileSync(file, bytes);
    const { code, stderr } = run('acceptor', env(dataDir));
    expect(code).toBe(1);
    expect(stderr.split('\n')).toHaveLength(1);
    expect(stderr).toContain(`${dataDir}/paxos-g0-a0/000000000000.seg at byte ${second.offset}: `);
  });
});
