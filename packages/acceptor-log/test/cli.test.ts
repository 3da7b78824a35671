import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AcceptorLog, nodeStorage, scanLog, segmentName } from '../src/index.ts';
import { b, config, identity, writeHistory } from './helpers.ts';

const CLI = new URL('../dist/cli.js', import.meta.url).pathname;

function dump(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, 'dump', ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.trim() };
}

const dirs: string[] = [];
/** A log on disk: a promise, 120 accepts over several segments, one noop. */
function writtenLog(): string {
  const dir = path.join(mkdtempSync(path.join(tmpdir(), 'paxos-dump-')), 'test-g1-a2');
  dirs.push(path.dirname(dir));
  const { log } = AcceptorLog.open(nodeStorage(dir), { identity, fsync: false, segmentBytes: 4096 });
  log.promised(b(3, 1), config);
  writeHistory(log, { slots: 120, lag: 20, round: 3 });
  log.accepted({ slot: 120, ballot: b(3), value: { kind: 'noop' } }, 100, config);
  log.close();
  return dir;
}

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run pnpm build first`);
});
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('pnpm log dump', () => {
  it('prints the state, each segment and every record, in order', () => {
    const dir = writtenLog();
    const { code, stdout, stderr } = dump(dir);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(
      new RegExp(
        `^${dir}/state: state through segment \\d+  promised \\(3,1\\)  watermark \\d+  config 7 \\[0,1\\]  live segments `,
      ),
    );
    expect(lines[1]).toBe(`${dir}/000000000000.seg: segment 0 of cluster "test" group 1 acceptor 2`);
    expect(lines[2]).toBe('000000000000.seg @77  promise  ballot (3,1)  config 7 [0,1]');
    expect(lines[3]).toMatch(
      /^000000000000\.seg @\d+ {2}accept {3}ballot \(3,0\) {2}slot 0 {2}value 100 B {2}watermark 0 {2}config 7 \[0,1\]$/,
    );
    expect(lines.at(-2)).toMatch(
      / accept {3}ballot \(3,0\) {2}slot 120 {2}value noop {2}watermark 100 {2}config 7 \[0,1\]$/,
    );
    expect(lines.at(-1)).toBe('122 records (121 accepts, 1 promises)');
    expect(lines.filter((l) => / segment \d+ of cluster/.test(l)).length).toBeGreaterThan(2);
  });

  it('prints watermark and retired records, in text and --json', () => {
    const dir = writtenLog();
    const { log } = AcceptorLog.open(nodeStorage(dir), { identity, fsync: false, segmentBytes: 4096 });
    log.watermarkRaised(b(4, 1), 121, config);
    log.retired(b(5, 1));
    log.close();
    const text = dump(dir);
    expect(text.code).toBe(0);
    const lines = text.stdout.trim().split('\n');
    expect(lines.at(-3)).toMatch(
      /\.seg @\d+ {2}watermark {2}ballot \(4,1\) {2}watermark 121 {2}config 7 \[0,1\]$/,
    );
    expect(lines.at(-2)).toMatch(/\.seg @\d+ {2}retired {2}ballot \(5,1\) {2}group 1 acceptor 2$/);
    expect(lines.at(-1)).toBe('124 records (121 accepts, 1 promises, 1 watermarks, 1 retired)');
    const json = dump(dir, '--json');
    expect(json.code).toBe(0);
    const objects = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(objects.at(-3)).toMatchObject({
      type: 'record',
      kind: 'watermark',
      ballot: b(4, 1),
      watermark: 121,
      config,
    });
    expect(objects.at(-2)).toMatchObject({
      type: 'record',
      kind: 'retired',
      ballot: b(5, 1),
      groupId: 1,
      acceptorId: 2,
    });
    expect(objects.at(-1)).toMatchObject({
      type: 'end',
      records: 124,
      accepts: 121,
      watermarks: 1,
      retirements: 1,
    });
  });

  it('--json: one object per line, --from-slot leaves out lower slots, and one segment can be dumped alone', () => {
    const dir = writtenLog();
    const { code, stdout } = dump(dir, '--json', '--from-slot', '115');
    expect(code).toBe(0);
    const objects = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const records = objects.filter((o) => o.type === 'record');
    expect(records.map((r) => r.slot ?? 'promise')).toEqual(['promise', 115, 116, 117, 118, 119, 120]);
    expect(records[1]).toMatchObject({
      kind: 'accept',
      ballot: { round: 3, proposerId: 0 },
      value: 'batch',
      valueBytes: 100,
      watermark: 95,
      config,
    });
    expect(objects.at(-1)).toEqual({
      type: 'end',
      records: 122,
      accepts: 121,
      watermarks: 0,
      retirements: 0,
      tornBytes: 0,
      tornAt: null,
    });
    const one = dump(path.join(dir, segmentName(1)), '--json');
    const segs = new Set(
      one.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .filter((o) => o.type === 'record')
        .map((o) => o.segment),
    );
    expect([...segs]).toEqual([1]);
  });

  it('reports a torn tail without cutting it, and stops at damage with one line naming file and offset', () => {
    const dir = writtenLog();
    const storage = nodeStorage(dir);
    const items = [...scanLog(storage)];
    const last = items.filter((i) => i.type === 'segment').at(-1);
    if (last?.type !== 'segment') throw new Error('no segment');
    const lastName = path.basename(last.file);
    const size = storage.size(lastName);
    storage.append(lastName, new Uint8Array([7, 0, 0, 0, 1]), 5);
    storage.close();
    const torn = dump(dir);
    expect(torn.code).toBe(0);
    expect(torn.stdout.trim().split('\n').at(-1)).toBe(
      `torn tail: 5 bytes at ${dir}/${lastName} @${size} (an acceptor cuts them off when it starts)`,
    );
    // Segment 0 cut inside its fourth record: the records before it are printed, then the error.
    const fourth = items.filter((i) => i.type === 'record' && i.segment === 0)[3];
    if (fourth?.type !== 'record') throw new Error('no record');
    const bytes = nodeStorage(dir);
    bytes.truncate(segmentName(0), fourth.offset + 2); // cut inside a closed segment
    bytes.close();
    const broken = dump(dir);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toBe(
      `pnpm log: ${dir}/000000000000.seg at byte ${fourth.offset}: a record header cut short at 2 bytes (expected 12 bytes)`,
    );
    expect(broken.stdout.trim().split('\n')).toHaveLength(2 + 3); // the state, segment 0's header, the three records before the damage
  });

  it('a path that is no log is a usage error (exit 2)', () => {
    expect(dump('/nonexistent/log')).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/^pnpm log: \/nonexistent\/log: no such file or directory/),
    });
    const dir = writtenLog();
    expect(dump(path.join(dir, '..'))).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/is not an acceptor log directory: it holds "test-g1-a2"/),
    });
  });
});
