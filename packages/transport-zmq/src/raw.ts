/**
 * Raw ZeroMQ throughput on this machine (no transport, no decoding), the baseline benchmarks
 * compare against. Sender and receiver run in this one process, as two async loops sharing
 * Node's thread (like a role that both receives and sends); ZeroMQ's I/O thread does the wire.
 */
import { Dealer, Pull, Push, Router } from 'zeromq';
import { assertEndpoint } from './endpoint.ts';

export interface RawZmqOptions {
  pattern: 'push-pull' | 'dealer-router';
  messages: number;
  size: number;
  /** Where the receiver binds (default 'tcp://127.0.0.1:*', an ephemeral port). */
  endpoint?: string;
}

export interface RawZmqResult {
  messagesPerSecond: number;
  seconds: number;
  messages: number;
}

/** A stalled run (it should never stall) fails after this long instead of hanging. */
const STALL_TIMEOUT_MS = 10_000;

/** Measures raw PUSH→PULL or DEALER→ROUTER messages/s on this machine, for benchmarks' baselines. */
export async function measureRawZmq(options: RawZmqOptions): Promise<RawZmqResult> {
  const { pattern, messages, size } = options;
  const endpoint = options.endpoint ?? 'tcp://127.0.0.1:*';
  assertEndpoint(endpoint, 'bind');
  if (!Number.isInteger(messages) || messages < 1)
    throw new Error(`messages must be a positive integer, got ${messages}`);
  if (!Number.isInteger(size) || size < 0)
    throw new Error(`size must be a non-negative integer, got ${size}`);
  if (pattern !== 'push-pull' && pattern !== 'dealer-router') {
    throw new Error(`pattern must be 'push-pull' or 'dealer-router', got ${String(pattern)}`);
  }

  const payload = Buffer.alloc(size, 0x61);
  // (zeromq.js throws "object is not extensible" for an option the socket type lacks, e.g. SNDHWM on a Pull.)
  const receiving = { receiveHighWaterMark: 10_000, linger: 0 };
  const sending = { sendHighWaterMark: 10_000, linger: 0 };
  const receiver = pattern === 'push-pull' ? new Pull(receiving) : new Router(receiving);
  const sender = pattern === 'push-pull' ? new Push(sending) : new Dealer(sending);
  receiver.receiveTimeout = STALL_TIMEOUT_MS;
  sender.sendTimeout = STALL_TIMEOUT_MS;
  try {
    await receiver.bind(endpoint);
    sender.connect(receiver.lastEndpoint ?? endpoint);
    // Warm-up: one message through, so the connection exists before timing starts.
    await sender.send(payload);
    await receiver.receive();

    const started = performance.now();
    const sendLoop = (async () => {
      for (let i = 0; i < messages; i++) await sender.send(payload);
    })();
    let sendError: unknown;
    sendLoop.catch((err: unknown) => {
      sendError = err;
    });
    for (let i = 0; i < messages; i++) {
      if (sendError !== undefined) throw sendError;
      await receiver.receive();
    }
    const seconds = (performance.now() - started) / 1000;
    await sendLoop;
    return { messagesPerSecond: messages / seconds, seconds, messages };
  } finally {
    sender.close();
    receiver.close();
  }
}
