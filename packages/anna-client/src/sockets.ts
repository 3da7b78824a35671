/**
 * Socket helpers shared by the client and the local server.
 *
 * zeromq.js allows one pending `send` and one pending `receive` per socket, so every PUSH
 * socket is wrapped in a `PushQueue` (a bounded write queue drained by one loop) and every
 * PULL socket is read by exactly one loop (`readLoop`).
 */

import * as zmq from 'zeromq';

type LogFn = (obj: unknown, msg?: string) => void;

/** The subset of a pino logger this package uses; a pino `Logger` fits. */
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

const noop: LogFn = () => {};
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

export interface PushQueueOptions {
  /** How long one send may wait for room in ZeroMQ's queue before the frame is dropped. */
  sendTimeoutMs: number;
  /** Frames waiting in our queue beyond this are dropped, oldest first. */
  maxQueued?: number;
  logger?: Logger;
}

/**
 * One PUSH socket connected to one peer endpoint, with a write queue so callers never hit
 * zeromq.js' "socket busy" error. Sending never throws and never rejects: a frame that cannot
 * be delivered is dropped (the protocol above retries on timeout).
 */
export class PushQueue {
  readonly endpoint: string;
  private readonly socket: zmq.Push;
  private readonly maxQueued: number;
  private readonly log: Logger;
  private queue: Uint8Array[] = [];
  private draining = false;
  private closed = false;
  /** Frames dropped because the queue overflowed or a send failed. */
  dropped = 0;

  /** Throws if `endpoint` is not a valid ZeroMQ endpoint. */
  constructor(endpoint: string, options: PushQueueOptions) {
    this.endpoint = endpoint;
    this.maxQueued = options.maxQueued ?? 10_000;
    this.log = options.logger ?? silentLogger;
    this.socket = new zmq.Push({
      linger: 0,
      sendTimeout: options.sendTimeoutMs,
      sendHighWaterMark: 1000,
      reconnectInterval: 50,
      reconnectMaxInterval: 1000,
    });
    try {
      this.socket.connect(endpoint);
    } catch (err) {
      this.socket.close();
      throw err;
    }
  }

  send(frame: Uint8Array): void {
    if (this.closed) return;
    if (this.queue.length >= this.maxQueued) {
      this.queue.shift();
      this.dropped++;
    }
    this.queue.push(frame);
    if (!this.draining) void this.drain();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      for (let frame = this.queue.shift(); frame !== undefined; frame = this.queue.shift()) {
        if (this.closed) return;
        try {
          await this.socket.send(frame);
        } catch (err) {
          if (this.closed) return;
          this.dropped++;
          this.log.debug({ err, endpoint: this.endpoint }, 'send failed; frame dropped');
        }
      }
    } finally {
      this.draining = false;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.socket.close();
  }
}

/** Creates a PULL socket with linger 0 and binds it; on failure the socket is closed again. */
export async function bindPull(endpoint: string): Promise<{ socket: zmq.Pull; endpoint: string }> {
  const socket = new zmq.Pull({ linger: 0 });
  try {
    await socket.bind(endpoint);
  } catch (err) {
    socket.close();
    throw err;
  }
  return { socket, endpoint: socket.lastEndpoint ?? endpoint };
}

/**
 * Reads every frame of `socket` (first part of each message) until the socket is closed.
 * Never rejects: a failing `onFrame` or receive is logged and reading goes on / stops.
 */
export async function readLoop(
  socket: zmq.Pull,
  onFrame: (frame: Buffer) => void,
  log: Logger,
  what: string,
): Promise<void> {
  try {
    for await (const parts of socket) {
      const frame = parts[0];
      if (frame === undefined) continue;
      try {
        onFrame(frame);
      } catch (err) {
        log.error({ err }, `${what}: handler failed; frame dropped`);
      }
    }
  } catch (err) {
    if (!socket.closed) log.error({ err }, `${what}: receive loop stopped`);
  }
}

/** Port of `tcp://host:port`, or undefined. */
export function endpointPort(endpoint: string): number | undefined {
  const m = /:(\d+)$/.exec(endpoint);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

/** Hosts that mean "every interface" when binding and cannot be connected to. */
export function isWildcardHost(host: string): boolean {
  return host === '*' || host === '0.0.0.0' || host === '::' || host === '[::]';
}

/** `tcp://host:port`, with IPv6 literals bracketed. */
export function tcpEndpoint(host: string, port: number | '*'): string {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `tcp://${h}:${port}`;
}
