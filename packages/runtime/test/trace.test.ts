import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeBatch, type Message } from '@paxos/core';
import { describe, expect, it, vi } from 'vitest';
import { ConfigError, checkCommonSettings } from '../src/config.ts';
import {
  commandKey,
  HopTracer,
  pinoTraceSink,
  sampledAt,
  type TraceRecord,
  traceKeys,
  traceTime,
} from '../src/trace.ts';

const ballot = { round: 1, proposerId: 1 };
const request: Message = {
  type: 'ClientRequest',
  command: { clientId: 'tcp://c:1#0.0', requestId: 7, payload: new Uint8Array(0) },
};
const phase2b: Message = { type: 'Phase2b', slot: 3, ballot, groupId: 0, acceptorId: 2 };
const heartbeat: Message = { type: 'Heartbeat', ballot, watermark: 0, progress: 0, pending: 0 };

/** A tracer on a clock the test sets, writing into `written`. */
function tracer(sample: number) {
  const written: TraceRecord[] = [];
  let flushes = 0;
  let now = 0;
  const sink = {
    write: (records: readonly TraceRecord[]) => written.push(...records),
    flush: () => flushes++,
  };
  const t = new HopTracer(sample, sink, () => ({ us: now, mono: now - 1_000_000 }));
  return { t, written, flushes: () => flushes, at: (us: number) => (now = us) };
}

describe('traceKeys', () => {
  it('names commands before the batch and the slot after it', () => {
    expect(traceKeys(request)).toEqual({ cmd: '7@tcp://c:1#0.0' });
    expect(
      traceKeys({
        type: 'ClientBatch',
        batch: encodeBatch([
          { clientId: 'a', requestId: 1, payload: new Uint8Array(0) },
          { clientId: 'b', requestId: 2, payload: new Uint8Array(0) },
        ]),
        forwarded: false,
      }),
    ).toEqual({ cmds: ['1@a', '2@b'] });
    expect(traceKeys(phase2b)).toEqual({ slot: 3, acceptor: 2 });
    expect(traceKeys({ type: 'Chosen', slot: 3, ballot, value: null })).toEqual({ slot: 3, value: false });
    expect(traceKeys({ type: 'ClientReply', clientId: 'a', requestId: 1, slot: 3 })).toEqual({
      cmd: commandKey('a', 1),
      slot: 3,
    });
    expect(traceKeys(heartbeat)).toBe(null);
  });
});

describe('sampledAt', () => {
  it('traces one wall-clock second in every N, the same seconds everywhere', () => {
    expect(sampledAt(0, 0)).toBe(false);
    expect(sampledAt(5_500_000, 1)).toBe(true);
    expect(sampledAt(10_999_999, 10)).toBe(true);
    expect(sampledAt(11_000_000, 10)).toBe(false);
    expect(sampledAt(20_000_000, 10)).toBe(true);
  });
});

describe('HopTracer', () => {
  it('links what a receive sent to that receive, and writes in bulk, off the message path', () => {
    vi.useFakeTimers();
    const { t, written, flushes, at } = tracer(1);
    at(100);
    t.received(request);
    at(130);
    t.sent({ type: 'ClientBatch', batch: encodeBatch([]), forwarded: false });
    t.handled();
    vi.advanceTimersByTime(999);
    expect(written).toEqual([]);
    vi.advanceTimersByTime(1);
    vi.useRealTimers();
    expect(flushes()).toBe(1);
    expect(written).toEqual([
      { hop: 'recv', type: 'ClientRequest', us: 100, mono: -999_900, cmd: '7@tcp://c:1#0.0' },
      { hop: 'send', type: 'ClientBatch', us: 130, mono: -999_870, rx: 100, cmds: [] },
    ]);
  });

  it('traces nothing in the seconds not sampled, nor what an untraced receive sends', () => {
    const { t, written, at } = tracer(2);
    at(1_000_000);
    t.received(request);
    t.sent(phase2b);
    t.handled();
    t.sent(phase2b); // a timer's send in an untraced second
    at(2_000_000);
    t.received(heartbeat); // traced second, but not on the command path
    t.sent(phase2b);
    t.handled();
    t.flush();
    expect(written).toEqual([]);
  });

  it('traces sends outside a receive (timers, the load generator) by the second they happen in', () => {
    const { t, written, at } = tracer(1);
    at(42);
    t.sent(request);
    t.flush();
    expect(written).toEqual([
      { hop: 'send', type: 'ClientRequest', us: 42, mono: -999_958, cmd: '7@tcp://c:1#0.0' },
    ]);
  });

  it('refuses a sample below 1 (0 means no tracer at all)', () => {
    expect(() => new HopTracer(0, { write: () => {}, flush: () => {} })).toThrow(/integer >= 1/);
  });
});

describe('checkCommonSettings', () => {
  it('refuses a trace the log level would hide', () => {
    expect(() => checkCommonSettings({ traceSample: 1, logLevel: 'warn' })).toThrow(ConfigError);
    expect(() => checkCommonSettings({ traceSample: 1, logLevel: 'warn' })).toThrow(
      /TRACE_SAMPLE .*LOG_LEVEL/,
    );
    expect(() => checkCommonSettings({ traceSample: 1, logLevel: 'info' })).not.toThrow();
    expect(() => checkCommonSettings({ traceSample: 0, logLevel: 'silent' })).not.toThrow();
  });
});

describe('traceTime', () => {
  it('reads the wall clock in µs and the monotonic clock beside it', () => {
    const a = traceTime();
    const b = traceTime();
    expect(Math.abs(a.us - Date.now() * 1000)).toBeLessThan(50_000);
    expect(b.mono).toBeGreaterThanOrEqual(a.mono);
    expect(b.us - b.mono).toBeCloseTo(a.us - a.mono, 3);
  });
});

describe('pinoTraceSink', () => {
  it('formats pino lines at info in memory and writes them only on flush', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'trace-sink-'));
    const file = path.join(dir, 'log');
    const fd = openSync(file, 'a');
    try {
      const sink = pinoTraceSink({ role: 'batcher', instance: 'batcher-0' }, fd);
      sink.write([{ hop: 'recv', type: 'ClientRequest', us: 12.5, mono: 2.5, cmd: '1@c' }]);
      expect(readFileSync(file, 'utf8')).toBe('');
      sink.flush();
      const lines = readFileSync(file, 'utf8').trim().split('\n');
      expect(lines.map((l) => JSON.parse(l))).toEqual([
        expect.objectContaining({
          level: 30,
          msg: 'trace',
          role: 'batcher',
          instance: 'batcher-0',
          pid: process.pid,
          hop: 'recv',
          type: 'ClientRequest',
          us: 12.5,
          mono: 2.5,
          cmd: '1@c',
        }),
      ]);
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
