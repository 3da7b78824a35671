import { writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { type Address, decodeBatch, type Message } from '@paxos/core';
import { pino } from 'pino';

/**
 * Per-hop tracing (TRACE_SAMPLE): a process logs, at info, one line per traced receive and send
 * of a command's path (client → batcher → leader → proxy leader → acceptors → proxy leader →
 * unbatcher → client) with a wall-clock timestamp in µs, so the lines of every process can be put
 * on one time line (`pnpm trace:hops` does, see apps/cluster/src/hop-trace.ts).
 *
 * Which messages are traced is decided without any coordination and without a flag on the wire:
 * by wall-clock second, one second in every `sample`. Every process traces the same seconds, so
 * the hops of a command handled within one of them are all traced (only a command that straddles
 * the end of a traced second is cut short, and the analysis drops it). On several hosts this
 * needs their clocks in step, which the µs timestamps need anyway.
 */

/** What identifies a message along the path: commands before the batch has a slot, the slot after. */
export interface TraceKeys {
  /** One command, `requestId@clientId` (see `commandKey`). */
  readonly cmd?: string;
  /** The commands of a batch. */
  readonly cmds?: readonly string[];
  readonly slot?: number;
  /** Phase-2b: the voter's index in its group. */
  readonly acceptor?: number;
  /** Chosen: whether it carries the value (to an unbatcher) or only the slot (to the leader). */
  readonly value?: boolean;
}

/** One traced event, as logged. `rx`: the receive (its `us`) whose handling sent this message. */
export interface TraceRecord extends TraceKeys {
  readonly hop: 'recv' | 'send';
  readonly type: Message['type'];
  /** Wall clock, µs since the epoch: comparable across hosts whose clocks are in step. */
  readonly us: number;
  /**
   * The host's monotonic clock, µs: comparable across the processes of one host even when the
   * wall clock was stepped between their starts (which shifts their `us` against each other).
   */
  readonly mono: number;
  readonly rx?: number;
}

/** A command's identity in trace lines; the request id comes first since a client id holds any character. */
export function commandKey(clientId: Address, requestId: number): string {
  return `${requestId}@${clientId}`;
}

/** The identity of a message on the command path, or null for the rest (heartbeats, phase 1, leader info). */
export function traceKeys(message: Message): TraceKeys | null {
  switch (message.type) {
    case 'ClientRequest':
      return { cmd: commandKey(message.command.clientId, message.command.requestId) };
    case 'ClientBatch': {
      // Decoded only for a traced message: the leader never looks inside a batch otherwise.
      const decoded = decodeBatch(message.batch);
      return { cmds: decoded.ok ? decoded.commands.map((c) => commandKey(c.clientId, c.requestId)) : [] };
    }
    case 'Phase2a':
    case 'Nack':
      return { slot: message.slot };
    case 'Phase2b':
      return { slot: message.slot, acceptor: message.acceptorId };
    case 'Chosen':
      return { slot: message.slot, value: message.value !== null };
    case 'ClientReply':
      return { cmd: commandKey(message.clientId, message.requestId), slot: message.slot };
    default:
      return null;
  }
}

/** A reading of both clocks, µs (see TraceRecord). */
export interface TraceTime {
  readonly us: number;
  readonly mono: number;
}

/**
 * Both clocks from one reading of the monotonic one: the wall clock is the process's start-up
 * reading of it (performance.timeOrigin) plus monotonic time since.
 */
export function traceTime(): TraceTime {
  const mono = Number(process.hrtime.bigint()) / 1000;
  return { us: mono + wallOffsetMicros, mono };
}

const wallOffsetMicros =
  (performance.timeOrigin + performance.now()) * 1000 - Number(process.hrtime.bigint()) / 1000;

/** Whether a message handled at `us` is traced: the second it falls in is one of each `sample`. */
export function sampledAt(us: number, sample: number): boolean {
  return sample > 0 && Math.floor(us / 1e6) % sample === 0;
}

/** Where trace records go: `write` may buffer, `flush` makes what was written durable. */
export interface TraceSink {
  write(records: readonly TraceRecord[]): void;
  flush(): void;
}

/**
 * Trace lines through pino at info on stderr, like the process's other logs, but written in bulk:
 * pino formats into memory and `flush` hands everything to one write(2), so a traced process
 * spends its time on its work rather than on system calls (which would show up in the very hops
 * being measured). No fsync: a pino destination's flushSync would sync the log file each time.
 */
export function pinoTraceSink(fields: { role: string; instance: string }, fd = 2): TraceSink {
  let chunks: string[] = [];
  const logger = pino(
    { level: 'info', base: { pid: process.pid, hostname: hostname(), ...fields } },
    { write: (line: string) => void chunks.push(line) },
  );
  return {
    write: (records) => {
      for (const record of records) logger.info(record, 'trace');
    },
    flush: () => {
      if (chunks.length === 0) return;
      const bytes = Buffer.from(chunks.join(''));
      chunks = [];
      let written = 0;
      while (written < bytes.length) written += writeSync(fd, bytes, written);
    },
  };
}

/** Records are handed to the sink at most this long after they happen, or once this many are held. */
const FLUSH_MS = 1000;
const MAX_HELD = 4096;

/**
 * Collects a process's trace records and hands them to its sink in bulk, off the path of the
 * messages: a receive costs a clock read and an object, serialising waits for the flush.
 */
export class HopTracer {
  private records: TraceRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** The receive being handled (its `us`), when it is traced; null between receives or when not traced. */
  private current: number | null = null;
  /** Within a receive: whether it is traced (a receive outside the traced seconds sends untraced too). */
  private inReceive = false;

  constructor(
    private readonly sample: number,
    private readonly sink: TraceSink,
    private readonly clock: () => TraceTime = traceTime,
  ) {
    if (!Number.isInteger(sample) || sample < 1)
      throw new Error(`sample must be an integer >= 1, got ${sample}`);
  }

  /** A message arrived; what the role sends until `handled` is attributed to it. */
  received(message: Message): void {
    const { us, mono } = this.clock();
    this.inReceive = true;
    this.current = null;
    if (!sampledAt(us, this.sample)) return;
    const keys = traceKeys(message);
    if (keys === null) return;
    this.current = us;
    this.hold({ hop: 'recv', type: message.type, us, mono, ...keys });
  }

  /** The receive's step and effects are done. */
  handled(): void {
    this.inReceive = false;
    this.current = null;
  }

  /**
   * A message was handed to the transport: traced if the receive that sent it was, or, outside a
   * receive (a timer, the load generator), if now is a traced second.
   */
  sent(message: Message): void {
    if (this.inReceive && this.current === null) return;
    const keys = traceKeys(message);
    if (keys === null) return;
    const { us, mono } = this.clock();
    if (this.current !== null) {
      this.hold({ hop: 'send', type: message.type, us, mono, rx: this.current, ...keys });
    } else if (sampledAt(us, this.sample)) {
      this.hold({ hop: 'send', type: message.type, us, mono, ...keys });
    }
  }

  /** Hands everything held to the sink and flushes it (also what a stopping process calls last). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.records.length === 0) return;
    const records = this.records;
    this.records = [];
    this.sink.write(records);
    this.sink.flush();
  }

  private hold(record: TraceRecord): void {
    this.records.push(record);
    if (this.records.length >= MAX_HELD) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), FLUSH_MS).unref();
  }
}
