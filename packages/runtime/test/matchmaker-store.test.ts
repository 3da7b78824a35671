import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { genesisState } from '@paxos/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config.ts';
import { genesisSpec, matchmakerStoreDir, openMatchmakerStore } from '../src/matchmaker-store.ts';

let dataDir: string;
beforeEach(() => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'paxos-mm-'));
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

const identity = { cluster: 'c/1', matchmakerId: 2 };
const open = (state: 'new' | 'existing' | 'replacement', who = identity) =>
  openMatchmakerStore(dataDir, who, { fsync: false, state });

describe('openMatchmakerStore', () => {
  it('keeps each matchmaker in <cluster>-m<id> under DATA_DIR', () => {
    expect(matchmakerStoreDir('/data', identity)).toBe('/data/c_1-m2');
  });

  it('new: no state on a first start, then the saved state on the next (never genesis over it)', () => {
    const first = open('new');
    expect([first.state, first.warning]).toEqual([null, null]);
    const saved = genesisState(genesisSpec(1, 2));
    first.store.save(saved);
    expect(open('new').state).toEqual(saved);
    expect(open('existing').state).toEqual(saved);
  });

  it('existing with no state is refused with one line naming the directory and the way out', () => {
    const dir = matchmakerStoreDir(dataDir, identity);
    expect(() => open('existing')).toThrow(ConfigError);
    expect(() => open('existing')).toThrow(
      `matchmaker state ${dir} is missing, but MATCHMAKER_STATE (--state) is "existing"`,
    );
    mkdirSync(dir);
    expect(() => open('existing')).toThrow(`matchmaker state ${dir} is empty`);
  });

  it('replacement starts with no state and a warning, and never discards a state that is there', () => {
    const replaced = open('replacement');
    expect(replaced.state).toBeNull();
    expect(replaced.warning).toMatch(/^started as a replacement with no state/);
    replaced.store.save(genesisState(genesisSpec(0, 1)));
    expect(() => open('replacement')).toThrow(/already holds one: refusing to discard it/);
  });

  it("refuses another matchmaker's state and a directory holding something else", () => {
    open('new').store.save(genesisState(genesisSpec(1, 1)));
    const other = { cluster: 'c/1', matchmakerId: 3 };
    const otherDir = matchmakerStoreDir(dataDir, other);
    mkdirSync(otherDir);
    copyFileSync(
      path.join(matchmakerStoreDir(dataDir, identity), 'matchmaker'),
      path.join(otherDir, 'matchmaker'),
    );
    expect(() => open('existing', other)).toThrow(ConfigError);
    expect(() => open('existing', other)).toThrow(
      /belongs to cluster "c\/1" matchmaker 2, not to this matchmaker/,
    );
    rmSync(otherDir, { recursive: true });
    mkdirSync(otherDir);
    writeFileSync(path.join(otherDir, 'junk'), 'x');
    expect(() => open('new', other)).toThrow(/is not a matchmaker's directory/);
  });
});
