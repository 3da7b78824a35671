import { appendFileSync, cpSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Acceptor, type Effect, encodeBatch, type Value } from '@paxos/core';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config.ts';
import { acceptorLogDir, type DurableAcceptor, durableAcceptor, openAcceptorLog } from '../src/wal.ts';

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
const config = { id: 77, groups: [0, 1] };
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
      message: phase1a(9, { id: 78, groups: [1, 0] }),
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
