import { COMMON_SETTINGS, ConfigError, genesisSpec, loadSettings } from '@paxos/runtime';
import { describe, expect, it } from 'vitest';
import { MATCHMAKER_SETTINGS } from '../src/settings.ts';

// What runApp parses: every ConfigError here is one line on stderr and exit code 2.
const spec = { ...COMMON_SETTINGS, ...MATCHMAKER_SETTINGS };
const ok = { ANNA_ROUTING: 'tcp://127.0.0.1:6450', MATCHMAKER_ID: '1' };
const load = (env: Record<string, string>, args: string[] = []) =>
  loadSettings('paxos-matchmaker', 'd', spec, args, env);

describe('matchmaker settings', () => {
  it('defaults: port 15000, state new, fsync on, F=1, two groups', () => {
    const s = load(ok);
    expect(s).toMatchObject({
      port: 15000,
      matchmakerId: 1,
      dataDir: './paxos-data',
      fsync: true,
      f: 1,
      groups: 2,
      state: 'new',
    });
    expect(load(ok, ['--state', 'existing', '--port', '15001']).state).toBe('existing');
    expect(load({ ...ok, MATCHMAKER_STATE: 'replacement', DATA_FSYNC: 'false' })).toMatchObject({
      state: 'replacement',
      fsync: false,
    });
  });

  it.each([
    [
      { ANNA_ROUTING: ok.ANNA_ROUTING },
      'MATCHMAKER_ID (--matchmaker-id) is required: expected an integer >= 0',
    ],
    [{ ...ok, MATCHMAKER_ID: '-1' }, 'MATCHMAKER_ID (--matchmaker-id): got "-1", expected an integer >= 0'],
    [
      { ...ok, MATCHMAKER_STATE: 'restored' },
      'MATCHMAKER_STATE (--state): got "restored", expected one of new, existing, replacement',
    ],
    [
      { ...ok, MATCHMAKER_PORT: '70000' },
      'MATCHMAKER_PORT (--port): got "70000", expected a TCP port 0-65535',
    ],
    [{ ...ok, F: 'one' }, 'F (--f): got "one", expected an integer >= 0'],
    [
      { ...ok, ACCEPTOR_GROUPS: '0' },
      'ACCEPTOR_GROUPS (--acceptor-groups): got "0", expected an integer >= 1',
    ],
    [{ ...ok, DATA_FSYNC: 'maybe' }, 'DATA_FSYNC (--fsync): got "maybe", expected true or false'],
  ])('%j is refused with one line: %s', (env, message) => {
    expect(() => load(env)).toThrow(new ConfigError(message));
  });

  it('F and ACCEPTOR_GROUPS give the genesis configuration: groups 0..G-1, acceptor ids 0..2f, version 0', () => {
    const s = load({ ...ok, F: '2', ACCEPTOR_GROUPS: '3' });
    expect(genesisSpec(s.f, s.groups)).toEqual({
      f: 2,
      version: 0,
      groups: [0, 1, 2].map((groupId) => ({ groupId, acceptorIds: [0, 1, 2, 3, 4] })),
    });
  });
});
