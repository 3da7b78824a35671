import { existsSync, mkdtempSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AcceptorLog, nodeStorage, readState } from '../src/index.ts';
import { b, config, fullReplay, identity, writeHistory } from './helpers.ts';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'paxos-log-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('nodeStorage', () => {
  it('creates the directory, rolls segments on disk and recovers from them', () => {
    const dir = path.join(tempDir(), 'nested', 'paxos-g1-a2');
    const { log } = AcceptorLog.open(nodeStorage(dir), { identity, fsync: true, segmentBytes: 2048 });
    writeHistory(log, { slots: 300, promiseEvery: 100 });
    log.close();
    const files = readdirSync(dir).sort();
    expect(files.at(-1)).toBe('state');
    expect(files.filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(files.length).toBeGreaterThan(10);
    const storage = nodeStorage(dir);
    const {
      log: again,
      state,
      recovery,
    } = AcceptorLog.open(storage, { identity, fsync: true, segmentBytes: 2048 });
    again.close();
    expect(state).toEqual(fullReplay(nodeStorage(dir)));
    expect(recovery.segmentsRead).toBeLessThan(5);
    expect(readState(nodeStorage(dir))?.through).toBe(files.length - 3);
  });

  it('short writes: every byte is written, however few each write(2) takes', () => {
    const dir = tempDir();
    let calls = 0;
    const storage = nodeStorage(dir, {
      writeSync: (fd, buffer, offset, length) => {
        calls++;
        return writeSync(fd, buffer, offset, Math.min(length, 7));
      },
    });
    const { log } = AcceptorLog.open(storage, { identity, fsync: true, segmentBytes: 2048 });
    writeHistory(log, { slots: 50 });
    log.close();
    expect(calls).toBeGreaterThan(50 * 10);
    const { state } = AcceptorLog.open(nodeStorage(dir), { identity, fsync: false });
    expect([...state.accepted]).toHaveLength(50);
  });

  it('a write that makes no progress fails the commit, naming the file', () => {
    const dir = tempDir();
    let budget = Number.POSITIVE_INFINITY;
    const storage = nodeStorage(dir, {
      writeSync: (fd, buffer, offset, length) => {
        const n = Math.min(length, budget);
        budget -= n;
        return n === 0 ? 0 : writeSync(fd, buffer, offset, n);
      },
    });
    const { log } = AcceptorLog.open(storage, { identity, fsync: true });
    log.promised(b(1), config);
    log.commit();
    budget = 5;
    log.promised(b(2), config);
    expect(() => log.commit()).toThrow(
      `${path.join(dir, '000000000000.seg')}: a write of 26 bytes wrote 0 (after 5 of 31)`,
    );
    // The five bytes that did reach the file are a torn tail, cut off at the next start.
    const { state, recovery } = AcceptorLog.open(nodeStorage(dir), { identity, fsync: true });
    expect(recovery.tornBytes).toBe(5);
    expect(state.promised).toEqual(b(1));
  });

  it('a missing directory is a new log; the directory listing of a new log holds one segment', () => {
    const dir = path.join(tempDir(), 'fresh');
    expect(existsSync(dir)).toBe(false);
    const { recovery, log } = AcceptorLog.open(nodeStorage(dir), { identity, fsync: true });
    log.close();
    expect(recovery.created).toBe(true);
    expect(readdirSync(dir)).toEqual(['000000000000.seg']);
  });
});
