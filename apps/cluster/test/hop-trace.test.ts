import { describe, expect, it } from 'vitest';
import {
  buildChains,
  HOPS,
  hopStats,
  parseTraceLines,
  type TraceLine,
  traceClock,
} from '../src/hop-trace.ts';

const cmd = '7@tcp://127.0.0.1:10000#ab.0';

/** One command's trace lines as the processes log them: each hop 100 µs after the last, in shuffled order. */
function commandLines(base: number, slot: number, command: string): TraceLine[] {
  const t = (i: number) => base + 100 * i;
  const line = (
    role: string,
    pid: number,
    rest: Partial<TraceLine> & Pick<TraceLine, 'hop' | 'type' | 'us'>,
  ) => ({ role, pid, hostname: 'h', ...rest }) as TraceLine;
  return [
    line('unbatcher', 7, { hop: 'send', type: 'ClientReply', us: t(12), rx: t(11), cmd: command, slot }),
    line('client', 1, { hop: 'send', type: 'ClientRequest', us: t(0), cmd: command }),
    line('batcher', 2, { hop: 'recv', type: 'ClientRequest', us: t(1), cmd: command }),
    line('batcher', 2, { hop: 'send', type: 'ClientBatch', us: t(2), rx: t(1), cmds: [command] }),
    line('proposer', 3, { hop: 'recv', type: 'ClientBatch', us: t(3), cmds: [command] }),
    line('proposer', 3, { hop: 'send', type: 'Phase2a', us: t(4), rx: t(3), slot }),
    line('proxy_leader', 4, { hop: 'recv', type: 'Phase2a', us: t(5), slot }),
    line('proxy_leader', 4, { hop: 'send', type: 'Phase2a', us: t(6) - 10, rx: t(5), slot }),
    line('proxy_leader', 4, { hop: 'send', type: 'Phase2a', us: t(6), rx: t(5), slot }),
    // The faster acceptor's vote does not decide; the second one does.
    line('acceptor', 5, { hop: 'recv', type: 'Phase2a', us: t(7) - 50, slot }),
    line('acceptor', 5, { hop: 'send', type: 'Phase2b', us: t(7) - 40, rx: t(7) - 50, slot, acceptor: 0 }),
    line('proxy_leader', 4, { hop: 'recv', type: 'Phase2b', us: t(7) - 30, slot, acceptor: 0 }),
    line('acceptor', 6, { hop: 'recv', type: 'Phase2a', us: t(7), slot }),
    line('acceptor', 6, { hop: 'send', type: 'Phase2b', us: t(8), rx: t(7), slot, acceptor: 1 }),
    line('proxy_leader', 4, { hop: 'recv', type: 'Phase2b', us: t(9), slot, acceptor: 1 }),
    line('proxy_leader', 4, { hop: 'send', type: 'Chosen', us: t(10), rx: t(9), slot, value: true }),
    line('proxy_leader', 4, { hop: 'send', type: 'Chosen', us: t(10) + 1, rx: t(9), slot, value: false }),
    line('unbatcher', 7, { hop: 'recv', type: 'Chosen', us: t(11), slot, value: true }),
    line('client', 1, { hop: 'recv', type: 'ClientReply', us: t(13), cmd: command, slot }),
  ];
}

describe('buildChains', () => {
  it('follows a command by its id to the batch, by slot after it, and by cause inside a process', () => {
    const { chains, incomplete } = buildChains(commandLines(1_000_000, 5, cmd));
    expect(incomplete).toBe(0);
    expect(chains).toEqual([{ cmd, slot: 5, at: Array.from({ length: 14 }, (_, i) => 1_000_000 + 100 * i) }]);
    const stats = hopStats(chains);
    expect(stats.map((s) => s.name)).toEqual([
      ...HOPS.map((h) => h.name),
      'all wire hops',
      'all inside a process',
      'client send → client receive',
    ]);
    for (const s of stats.slice(0, HOPS.length)) expect(s.medianUs).toBe(100);
    expect(stats.at(-1)?.medianUs).toBe(1300);
    expect(stats.at(-3)?.medianUs).toBe(700);
    expect(stats.at(-2)?.medianUs).toBe(600);
  });

  it("joins an acceptor's vote to its receive by slot: a vote sent after a group commit has no rx", () => {
    const lines = commandLines(1_000_000, 5, cmd).map((l) =>
      l.role === 'acceptor' && l.hop === 'send' ? { ...l, rx: undefined } : l,
    );
    expect(buildChains(lines).chains[0]?.at).toEqual(
      Array.from({ length: 14 }, (_, i) => 1_000_000 + 100 * i),
    );
  });

  it('drops a chain with a hop missing (cut by the end of a traced second) and counts it', () => {
    const lines = [
      ...commandLines(1_000_000, 5, cmd),
      ...commandLines(2_000_000, 6, '8@c').filter((l) => l.role !== 'acceptor'),
    ];
    const { chains, incomplete } = buildChains(lines);
    expect(chains.map((c) => c.slot)).toEqual([5]);
    expect(incomplete).toBe(1);
  });
});

describe('traceClock', () => {
  it("puts one host's lines on its monotonic clock: a wall-clock step between process starts shifts no hop", () => {
    // Each line's monotonic reading, and the leader's wall clock 3 ms ahead of everyone else's.
    const lines = commandLines(1_000_000, 5, cmd).map((l) => ({
      ...l,
      mono: l.us - 500_000,
      ...(l.role === 'proposer'
        ? { us: l.us + 3000, ...(l.rx === undefined ? {} : { rx: l.rx + 3000 }) }
        : {}),
    }));
    expect(traceClock(lines)).toBe('mono');
    expect(buildChains(lines).chains[0]?.at).toEqual(Array.from({ length: 14 }, (_, i) => 500_000 + 100 * i));
  });

  it('falls back to the wall clock across hosts, or for lines without a monotonic reading', () => {
    const lines = commandLines(1_000_000, 5, cmd).map((l) => ({ ...l, mono: l.us }));
    expect(traceClock(lines)).toBe('mono');
    expect(traceClock(lines.map((l, i) => (i === 0 ? { ...l, hostname: 'other' } : l)))).toBe('us');
    expect(traceClock(commandLines(1_000_000, 5, cmd))).toBe('us');
  });
});

describe('parseTraceLines', () => {
  it('reads the trace lines of a log and skips everything else', () => {
    const text = [
      '{"level":30,"msg":"listening","role":"batcher"}',
      '{"level":30,"pid":2,"hostname":"h","role":"batcher","hop":"recv","type":"ClientRequest","us":5.5,"cmd":"1@c","msg":"trace"}',
      'not json "msg":"trace"',
      '{"level":30,"pid":2,"role":"batcher","hop":"send","ty',
    ].join('\n');
    expect(parseTraceLines(text)).toEqual([
      expect.objectContaining({ role: 'batcher', hop: 'recv', type: 'ClientRequest', us: 5.5, cmd: '1@c' }),
    ]);
  });
});
