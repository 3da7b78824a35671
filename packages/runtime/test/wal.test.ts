import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Acceptor, type Effect, encodeBatch, type Value } from '@paxos/core';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadSettings } from '../src/config.ts';
import {
  ACCEPTOR_LOG_STATE_SETTING,
  type AcceptorLogState,
  acceptorLogDir,
  type DurableAcceptor,
  durableAcceptor,
  openAcceptorLog,
} from '../src/wal.ts';

const identity = { cluster: 'test', groupId: 1, acceptorId: 2 };
const dirs: string[] = [];
/** A fresh DATA_DIR. */
function tempFile(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'paxos-wal-'));
  dirs.push(dir);
  return dir;
}
const open = (dataDir: string, fsync = false) => openAcceptorLog(dataDir, identity, { fsync });
const segment0 = (dataDir: string) => path.join(acceptorLogDir(dataDir, identity), '000000000000.seg');
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const value: Value = {
  kind: 'batch',
  batch: encodeBatch([
    { clientId: 'tcp://127.0.0.1:1#c', requestId: 3, payload: new Uint8Array([124, 0, 255]) },
  ]),
};
const b = (round: number) => ({ round, proposerId: 9 });
const config = { id: 77, groups: [0, 1], acceptorIds: [] };
const phase1a = (round: number, stamp = config) =>
  ({ type: 'Phase1a', ballot: b(round), fromSlot: 0, config: stamp }) as const;
const phase2a = (slot: number, round: number, watermark: number) =>
  ({ type: 'Phase2a', slot, ballot: b(round), value, watermark, groupId: 1, acceptors: [], config }) as const;

const acceptorAt = (state?: ReturnType<typeof openAcceptorLog>['state']) =>
  new Acceptor({
    address: 'tcp://127.0.0.1:12000',
    groupId: 1,
    acceptorId: 2,
    ...(state ? { recovered: state } : {}),
  });

/** Runs `steps` against a durable acceptor over `file`, committing after each step, as a burst of one. */
function run(file: string, steps: (acceptor: DurableAcceptor) => void) {
  const { log, state } = open(file);
  const acceptor = acceptorAt(state);
  const durable = durableAcceptor(acceptor, log, { release: () => {}, schedule: () => {} });
  steps({
    ...durable,
    step: (now, event) => {
      const effects = durable.step(now, event);
      durable.commit();
      return effects;
    },
  });
  log.close();
  return acceptor;
}

describe('acceptor log', () => {
  it('a restarted acceptor answers as its old self: promise, accepted values and watermark', () => {
    const file = tempFile();
    run(file, (a) => {
      a.step(0, { type: 'message', from: 'p', message: phase1a(2) });
      a.step(0, {
        type: 'message',
        from: 'x',
        message: phase2a(5, 2, 4),
      });
      a.step(0, { type: 'message', from: 'p', message: phase1a(3) });
    });
    const reborn = run(file, () => {});
    expect(reborn.promised).toEqual(b(3));
    expect(reborn.watermark).toBe(4);
    expect(reborn.accepted(5)).toEqual({ slot: 5, ballot: b(2), value });
    expect(reborn.config).toEqual(config);
    // It still refuses what it promised not to accept.
    const effects: Effect[] = reborn.step(0, {
      type: 'message',
      from: 'x',
      message: phase2a(7, 2, 0),
    });
    expect(effects).toContainEqual(
      expect.objectContaining({ kind: 'send', message: expect.objectContaining({ type: 'Nack' }) }),
    );
  });

  it('writes nothing for a rejected ballot, and cuts a record torn by a crash', () => {
    const file = tempFile();
    run(file, (a) => {
      a.step(0, { type: 'message', from: 'p', message: phase1a(5) });
      a.step(0, { type: 'message', from: 'p', message: phase1a(4) });
    });
    const size = statSync(segment0(file)).size;
    appendFileSync(segment0(file), Buffer.from([200, 0, 0, 0, 1, 2]));
    const { log, state, recovery } = open(file);
    log.close();
    expect(recovery.records).toBe(1);
    expect(recovery.tornBytes).toBe(6);
    expect(state.promised).toEqual(b(5));
    expect(statSync(segment0(file)).size).toBe(size);
  });

  it('keeps the pinned configuration across a restart: a leader of another one is still refused', () => {
    const file = tempFile();
    run(file, (a) => {
      a.step(0, { type: 'message', from: 'p', message: phase1a(2) });
    });
    const reborn = run(file, () => {});
    expect(reborn.config).toEqual(config);
    const refused = reborn.step(0, {
      type: 'message',
      from: 'q',
      message: phase1a(9, { id: 78, groups: [1, 0], acceptorIds: [] }),
    });
    expect(refused.filter((e) => e.kind === 'send')).toEqual([]);
    expect(reborn.promised).toEqual(b(2));
  });

  it('reads a log written before configurations were stamped (no pin yet)', () => {
    const file = tempFile();
    const { log } = open(file);
    log.promised(b(4), null);
    log.close();
    const { log: again, state } = open(file);
    again.close();
    expect(state.promised).toEqual(b(4));
    expect(state.config).toBeNull();
  });

  it("refuses another acceptor's log and a log of the old single-file format: a ConfigError (exit 2)", () => {
    const dataDir = tempFile();
    run(dataDir, (a) => {
      a.step(0, { type: 'message', from: 'p', message: phase1a(2) });
    });
    // The log of acceptor 2, copied where acceptor 0's belongs.
    const other = { ...identity, acceptorId: 0 };
    cpSync(acceptorLogDir(dataDir, identity), acceptorLogDir(dataDir, other), { recursive: true });
    expect(() => openAcceptorLog(dataDir, other, { fsync: false })).toThrow(ConfigError);
    expect(() => openAcceptorLog(dataDir, other, { fsync: false })).toThrow(
      /000000000000\.seg belongs to cluster "test" group 1 acceptor 2, not to this acceptor \(cluster "test" group 1 acceptor 0\)/,
    );
    const legacyIdentity = { ...identity, acceptorId: 5 };
    writeFileSync(`${acceptorLogDir(dataDir, legacyIdentity)}.wal`, Buffer.from([1, 2, 3]));
    expect(() => openAcceptorLog(dataDir, legacyIdentity, { fsync: false })).toThrow(
      /test-g1-a5\.wal is an acceptor log in the single-file format of earlier versions/,
    );
  });
});

describe('ACCEPTOR_LOG_STATE', () => {
  const openAs = (dataDir: string, logState: AcceptorLogState) =>
    openAcceptorLog(dataDir, identity, { fsync: false, logState });
  /** A DATA_DIR holding this acceptor's log, with one promise in it. */
  const withLog = () => {
    const dataDir = tempFile();
    run(dataDir, (a) => {
      a.step(0, { type: 'message', from: 'p', message: phase1a(2) });
    });
    return dataDir;
  };

  it('new (the default) creates a missing log and opens one that is there', () => {
    const dataDir = tempFile();
    const created = openAs(dataDir, 'new');
    created.log.close();
    expect(created.recovery.created).toBe(true);
    expect(created.warning).toBeNull();
    const again = openAs(dataDir, 'new');
    again.log.close();
    expect(again.recovery.created).toBe(false);
  });

  it('existing opens the log that is there, with no warning', () => {
    const opened = openAs(withLog(), 'existing');
    opened.log.close();
    expect(opened.recovery.created).toBe(false);
    expect(opened.state.promised).toEqual(b(2));
    expect(opened.warning).toBeNull();
  });

  it('existing refuses a missing or empty log directory, naming it and how to start a replacement, and creates nothing', () => {
    const dataDir = tempFile();
    const dir = acceptorLogDir(dataDir, identity);
    const attempt = () => openAs(dataDir, 'existing');
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(
      `acceptor log ${dir} is missing, but ACCEPTOR_LOG_STATE (--log-state) is "existing": this acceptor (cluster "test" group 1 acceptor 2) has run before, and starting it without its log would forget its promises and votes, which can let two different values be chosen for one slot. Restore the log there; or, if it is lost for good, start this acceptor as a replacement with ACCEPTOR_LOG_STATE=replacement (--log-state replacement), which is safe only while at most f acceptors of group 1 are replaced`,
    );
    expect(existsSync(dir)).toBe(false);
    // An emptied directory (its files deleted, the directory left) is refused the same way.
    mkdirSync(dir);
    expect(attempt).toThrow(new RegExp(`^acceptor log ${dir} is empty, but ACCEPTOR_LOG_STATE`));
    expect(readdirSync(dir)).toEqual([]);
  });

  it('replacement starts a new empty log where there is none, with a warning to log', () => {
    const dataDir = tempFile();
    const replaced = openAs(dataDir, 'replacement');
    replaced.log.close();
    expect(replaced.recovery.created).toBe(true);
    expect(replaced.state.promised).toEqual({ round: 0, proposerId: 0 });
    expect(replaced.warning).toBe(
      'started as a replacement on a new, empty log: this acceptor (cluster "test" group 1 acceptor 2) has forgotten whatever it promised and voted before, which is safe only while at most f acceptors of group 1 are replaced before a reconfiguration retires the old identity; restart it with ACCEPTOR_LOG_STATE=existing from now on',
    );
    // The new log is there for the next start, as existing.
    const next = openAs(dataDir, 'existing');
    next.log.close();
    expect(next.recovery.created).toBe(false);
  });

  it('replacement refuses a directory that already holds a log, and leaves it as it was', () => {
    const dataDir = withLog();
    const dir = acceptorLogDir(dataDir, identity);
    const before = readFileSync(segment0(dataDir));
    const attempt = () => openAs(dataDir, 'replacement');
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(
      `ACCEPTOR_LOG_STATE (--log-state) is "replacement", which starts this acceptor (cluster "test" group 1 acceptor 2) on a new, empty log, but ${dir} already holds a log (1 segment): refusing to discard it. Move it out of the way (e.g. to ${dir}.old) to start the replacement, or start with ACCEPTOR_LOG_STATE=existing to recover from it`,
    );
    expect(readFileSync(segment0(dataDir))).toEqual(before);
    expect(readdirSync(dir)).toEqual(['000000000000.seg']);
  });

  it('a bad value is one line naming the setting, the value and the values expected', () => {
    const spec = { logState: ACCEPTOR_LOG_STATE_SETTING };
    expect(loadSettings('t', 'd', spec, [], {}).logState).toBe('new');
    expect(loadSettings('t', 'd', spec, ['--log-state', 'existing'], {}).logState).toBe('existing');
    expect(loadSettings('t', 'd', spec, [], { ACCEPTOR_LOG_STATE: 'replacement' }).logState).toBe(
      'replacement',
    );
    expect(() => loadSettings('t', 'd', spec, [], { ACCEPTOR_LOG_STATE: 'old' })).toThrow(
      new ConfigError(
        'ACCEPTOR_LOG_STATE (--log-state): got "old", expected one of new, existing, replacement',
      ),
    );
  });
});
