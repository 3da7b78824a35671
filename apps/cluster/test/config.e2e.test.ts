import { spawnSync } from 'node:child_process';
import { DEFAULT_PORTS, type RoleName, roleBinary } from '@paxos/launcher';
import { describe, expect, it } from 'vitest';

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

describe('DEFAULT_PORTS (what a host per process listens on, and what the security group opens)', () => {
  const help = (role: RoleName) =>
    spawnSync(process.execPath, [roleBinary(role), '--help'], { encoding: 'utf8' }).stdout;

  it.each(['acceptor', 'proposer', 'batcher', 'proxy-leader', 'unbatcher', 'client'] as RoleName[])(
    'agree with the defaults %s prints in --help',
    (role) => {
      const defaults = [...help(role).matchAll(/env ([A-Z_]+_PORT); default "(\d+)"/g)];
      expect(defaults.length).toBeGreaterThan(0);
      for (const [, env, value] of defaults) {
        expect(DEFAULT_PORTS[env as keyof typeof DEFAULT_PORTS], env).toBe(Number(value));
      }
    },
  );

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
