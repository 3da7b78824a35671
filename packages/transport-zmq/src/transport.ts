/**
 * ZmqTransport: moves frames between processes over ZeroMQ (docs/architecture.md §4, §10). Each
 * ZeroMQ message is a bundle of length-prefixed frames (`bundle.ts`).
 *
 * - Receiving: one PULL socket per bound endpoint ("the receiver binds"), all read by ONE read loop
 *   that takes at most `maxReadsPerSocketPerPoll` messages from a socket before the next socket
 *   gets a turn (see `readLoop` for the design).
 * - Sending: one PUSH socket per peer endpoint, connected lazily ("the sender connects"), with its
 *   own bounded queue and a single async writer (zeromq.js allows one send in flight per socket).
 *
 * Protocol-agnostic: frames are opaque bytes; the caller's `decode` turns them into messages.
 */
import { Pull, Push } from 'zeromq';
import { encodeBundle, FRAME_HEADER_BYTES, splitBundle } from './bundle.ts';
import { assertEndpoint, parseEndpoint } from './endpoint.ts';
import { waitUntilReleased } from './port.ts';

export interface TransportLogger {
  warn(obj: object, msg: string): void;
  info?(obj: object, msg: string): void;
  debug?(obj: object, msg: string): void;
}

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; reason: string };

export type DropReason = 'queue-full' | 'closed' | 'send-error';

export interface TransportOptions<T> {
  /** Endpoints to bind, one PULL socket each, e.g. ['tcp://127.0.0.1:11000','tcp://127.0.0.1:11100']. Must be full tcp://host:port; validate and throw a clear Error naming the bad value and the expected form. */
  bind: readonly string[];
  /** At most this many reads from one socket before the next socket gets a turn (the seed's MAX_READS_PER_SOCKET_PER_POLL, default 100). */
  maxReadsPerSocketPerPoll?: number;
  /** ZeroMQ SNDHWM per peer socket (default 10_000) and RCVHWM per receiving socket (default 10_000). */
  sendHighWaterMark?: number;
  receiveHighWaterMark?: number;
  /** Our own bound on frames waiting to be written to one peer; beyond it new frames are dropped, counted and logged (rate-limited: at most one warning per peer per second). Default 10_000. */
  maxQueuedPerPeer?: number;
  /** Frames larger than this are dropped as invalid without decoding (default 16 MiB); set zmq maxMessageSize accordingly. */
  maxFrameBytes?: number;
  /**
   * ZeroMQ's ZMQ_MAXMSGSIZE on receiving sockets (default 2 × maxFrameBytes). Frames between
   * maxFrameBytes and this are received, counted as invalid and dropped; a peer that sends a frame
   * larger than this is disconnected by ZeroMQ itself (it reconnects; frames in flight are lost),
   * so memory per frame stays bounded. -1 means unlimited.
   */
  zmqMaxMessageSize?: number;
  /** A PUSH send that cannot complete within this many ms (peer gone, its HWM full) is dropped as 'send-error'. Default 1000. */
  sendTimeoutMs?: number;
  /** Close a peer socket that has not been sent to for this long (default 60_000; 0 or Infinity: never). Reopened on the next send. */
  peerIdleMs?: number;
  /** ZMQ_LINGER for peer sockets closed because idle, and the default for close() (default 1000). */
  lingerMs?: number;
  decode: (frame: Uint8Array) => DecodeResult<T>;
  onMessage: (message: T, socketIndex: number) => void;
  /** A frame that did not decode, an oversized frame, or a message that is not a bundle of frames: counted as invalid and dropped; the loop goes on. Each part of a multipart message is read as a bundle. */
  onInvalid?: (reason: string, socketIndex: number) => void;
  onDrop?: (endpoint: string, reason: DropReason) => void;
  /**
   * Called once a read round has handed every message it read to `onMessage`: the end of a
   * receive burst. Frames sent from here still leave with the round's (see `send`), so a caller
   * can answer a whole burst at once (a batcher sending its partial batch) without waiting a turn.
   */
  onReadBurstEnd?: () => void;
  logger?: TransportLogger;
}

export interface TransportStats {
  /** Frames decoded and handed to onMessage. */
  received: number;
  /** Frames dropped on receipt: decoder said no (or threw), multipart, oversized. */
  invalid: number;
  /** Frames accepted by ZeroMQ for sending (in its queue or on the wire). */
  sent: number;
  /** Frames given to send() that will never be sent ('queue-full', 'closed', 'send-error'). */
  dropped: number;
  /** Peer (PUSH) sockets currently open. */
  peers: number;
  /** Frames in our per-peer queues, not yet handed to ZeroMQ. */
  queued: number;
}

const DEFAULTS = {
  maxReadsPerSocketPerPoll: 100,
  sendHighWaterMark: 10_000,
  receiveHighWaterMark: 10_000,
  maxQueuedPerPeer: 10_000,
  maxFrameBytes: 16 * 1024 * 1024,
  sendTimeoutMs: 1000,
  peerIdleMs: 60_000,
  lingerMs: 1000,
} as const;

/** At most one warning per key per this many ms. */
const WARN_INTERVAL_MS = 1000;
/** How long close() waits for ZeroMQ to release the bound ports (it does so asynchronously). */
const PORT_RELEASE_TIMEOUT_MS = 1000;
/** Back-off before re-arming a socket whose receive failed unexpectedly (never seen in practice). */
const READ_ERROR_BACKOFF_MS = 50;
/** Frames coalesced into one multipart send. */
const MAX_FRAMES_PER_SEND = 256;

interface Peer {
  readonly endpoint: string;
  readonly socket: Push;
  /** Frames not yet handed to ZeroMQ: queue[head..] (array + head index: O(1) shift). */
  queue: (Uint8Array | undefined)[];
  head: number;
  /** The single writer for this socket is running. */
  writing: boolean;
  /** The writer's promise (resolves when it stops), so close() can wait for it. */
  writer: Promise<void> | undefined;
  closed: boolean;
  /** Set by send(); cleared by the idle sweep, which then starts the idle clock. */
  used: boolean;
  idleSince: number;
}

class RateLimiter {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  /** Returns the number of suppressed events since the last allowed one, or -1 if this one is suppressed too. */
  allow(key: string, now: number): number {
    const entry = this.last.get(key);
    if (entry === undefined) {
      if (this.last.size > 10_000) this.last.clear(); // keys are endpoints: bound the map too
      this.last.set(key, { at: now, suppressed: 0 });
      return 0;
    }
    if (now - entry.at < WARN_INTERVAL_MS) {
      entry.suppressed++;
      return -1;
    }
    const suppressed = entry.suppressed;
    entry.at = now;
    entry.suppressed = 0;
    return suppressed;
  }
}

interface Settings {
  maxReads: number;
  sendHighWaterMark: number;
  receiveHighWaterMark: number;
  maxQueuedPerPeer: number;
  maxFrameBytes: number;
  zmqMaxMessageSize: number;
  sendTimeoutMs: number;
  peerIdleMs: number;
  lingerMs: number;
}

/** Validates every option (before any socket is opened) and fills in defaults. */
function resolveSettings<T>(options: TransportOptions<T>): Settings {
  if (!Array.isArray(options.bind)) throw new Error('bind must be an array of tcp://host:port endpoints');
  for (const endpoint of options.bind) assertEndpoint(endpoint, 'bind');
  if (typeof options.decode !== 'function') throw new Error('decode must be a function');
  if (typeof options.onMessage !== 'function') throw new Error('onMessage must be a function');
  const maxFrameBytes = positiveInt('maxFrameBytes', options.maxFrameBytes, DEFAULTS.maxFrameBytes);
  const zmqMaxMessageSize = options.zmqMaxMessageSize ?? maxFrameBytes * 2;
  if (
    !Number.isInteger(zmqMaxMessageSize) ||
    (zmqMaxMessageSize < maxFrameBytes && zmqMaxMessageSize !== -1)
  ) {
    throw new Error(
      `zmqMaxMessageSize must be -1 or an integer >= maxFrameBytes (${maxFrameBytes}), got ${zmqMaxMessageSize}`,
    );
  }
  return {
    maxReads: positiveInt(
      'maxReadsPerSocketPerPoll',
      options.maxReadsPerSocketPerPoll,
      DEFAULTS.maxReadsPerSocketPerPoll,
    ),
    sendHighWaterMark: positiveInt(
      'sendHighWaterMark',
      options.sendHighWaterMark,
      DEFAULTS.sendHighWaterMark,
    ),
    receiveHighWaterMark: positiveInt(
      'receiveHighWaterMark',
      options.receiveHighWaterMark,
      DEFAULTS.receiveHighWaterMark,
    ),
    maxQueuedPerPeer: positiveInt('maxQueuedPerPeer', options.maxQueuedPerPeer, DEFAULTS.maxQueuedPerPeer),
    maxFrameBytes,
    zmqMaxMessageSize,
    sendTimeoutMs: positiveInt('sendTimeoutMs', options.sendTimeoutMs, DEFAULTS.sendTimeoutMs),
    peerIdleMs: nonNegative('peerIdleMs', options.peerIdleMs, DEFAULTS.peerIdleMs),
    lingerMs: nonNegative('lingerMs', options.lingerMs, DEFAULTS.lingerMs),
  };
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new Error(`${name} must be a non-negative number, got ${String(value)}`);
  }
  return value;
}

function errorInfo(err: unknown): { message: string; code?: string } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? { message: err.message, code } : { message: err.message };
  }
  return { message: String(err) };
}

/** Resolves on the event loop's check phase: lets timers and socket I/O run before we go on. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class ZmqTransport<T> {
  /** The bound endpoints, in the order of `bind` (ports resolved if `*` or 0 was given). */
  readonly endpoints: readonly string[];

  private readonly pulls: readonly Pull[];
  private readonly decode: (frame: Uint8Array) => DecodeResult<T>;
  private readonly onMessage: (message: T, socketIndex: number) => void;
  private readonly onInvalid: ((reason: string, socketIndex: number) => void) | undefined;
  private readonly onDrop: ((endpoint: string, reason: DropReason) => void) | undefined;
  private readonly onReadBurstEnd: (() => void) | undefined;
  private readonly logger: TransportLogger | undefined;
  private readonly limiter = new RateLimiter();

  private readonly maxReads: number;
  private readonly sendHighWaterMark: number;
  private readonly maxQueuedPerPeer: number;
  private readonly maxFrameBytes: number;
  private readonly sendTimeoutMs: number;
  private readonly peerIdleMs: number;
  private readonly lingerMs: number;

  // read side
  /** A receive() armed while idle is outstanding on socket i (so no other receive may be issued). */
  private readonly armed: boolean[];
  /** The message an armed receive() delivered, not yet consumed by the read loop. */
  private readonly parked: (Buffer[] | undefined)[];
  /** Wakes the read loop from its idle wait. */
  private wake: (() => void) | undefined;
  private stopping = false;
  private readonly readLoopDone: Promise<void>;
  /** A read round is delivering: writers for what it sends start when it ends, not a turn later. */
  private inRound = false;
  /** Peers sent to during the current round whose writer has not started yet. */
  private startAtRoundEnd: Peer[] = [];

  // send side
  private readonly peers = new Map<string, Peer>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private drainWaiter: (() => void) | undefined;
  private closing = false;
  private closePromise: Promise<void> | undefined;

  private counts = { received: 0, invalid: 0, sent: 0, dropped: 0, queued: 0 };

  /** Validates options, binds one PULL socket per endpoint and starts the read loop. */
  static async open<T>(options: TransportOptions<T>): Promise<ZmqTransport<T>> {
    const settings = resolveSettings(options);
    const pulls: Pull[] = [];
    const endpoints: string[] = [];
    try {
      for (const endpoint of options.bind) {
        const pull = new Pull({
          receiveHighWaterMark: settings.receiveHighWaterMark,
          maxMessageSize: settings.zmqMaxMessageSize,
          linger: 0,
        });
        pulls.push(pull);
        try {
          await pull.bind(endpoint);
        } catch (err) {
          const { code, message } = errorInfo(err);
          if (code === 'EADDRINUSE') throw new Error(`${endpoint} is already in use`, { cause: err });
          throw new Error(`cannot bind ${endpoint}: ${message}`, { cause: err });
        }
        endpoints.push(pull.lastEndpoint ?? endpoint);
      }
    } catch (err) {
      for (const pull of pulls) pull.close();
      await Promise.all(endpoints.map((endpoint) => waitUntilReleased(endpoint, PORT_RELEASE_TIMEOUT_MS)));
      throw err;
    }
    return new ZmqTransport(options, settings, pulls, endpoints);
  }

  private constructor(options: TransportOptions<T>, settings: Settings, pulls: Pull[], endpoints: string[]) {
    this.pulls = pulls;
    this.endpoints = Object.freeze(endpoints);
    this.decode = options.decode;
    this.onMessage = options.onMessage;
    this.onInvalid = options.onInvalid;
    this.onDrop = options.onDrop;
    this.onReadBurstEnd = options.onReadBurstEnd;
    this.logger = options.logger;
    this.maxReads = settings.maxReads;
    this.sendHighWaterMark = settings.sendHighWaterMark;
    this.maxQueuedPerPeer = settings.maxQueuedPerPeer;
    this.maxFrameBytes = settings.maxFrameBytes;
    this.sendTimeoutMs = settings.sendTimeoutMs;
    this.peerIdleMs = settings.peerIdleMs;
    this.lingerMs = settings.lingerMs;
    this.armed = pulls.map(() => false);
    this.parked = pulls.map(() => undefined);
    this.readLoopDone = this.readLoop()
      .catch((err: unknown) => {
        // Not expected: every await inside is guarded. Logged, never an unhandled rejection.
        this.logger?.warn({ err: errorInfo(err) }, 'zmq transport read loop failed');
      })
      // A round cut short by a throw still lets what it sent go out (close() waits for the writers).
      .finally(() => this.endRound(0));
  }

  get stats(): TransportStats {
    return { ...this.counts, peers: this.peers.size };
  }

  // ───────────────────────────── receiving ─────────────────────────────

  /*
   * Read fairness design (docs/architecture.md §4: each receiving socket is read at most
   * MAX_READS_PER_SOCKET_PER_POLL times before the next socket gets a turn).
   *
   * One loop serves every PULL socket, in rounds. In a round, socket i yields at most `maxReads`
   * messages: it is read with `receive()` only while `socket.readable` (ZMQ_EVENTS has POLLIN),
   * and zeromq.js resolves such a receive synchronously (its fast path), so a burst costs one
   * microtask per message and never a macrotask. A socket that is empty is left for the next round.
   * When the round ends, `onReadBurstEnd` runs and the writers of the peers the round's messages
   * sent to start (see `send`): a reply leaves in the turn its request arrived in. Then, if some
   * socket still has messages, the loop yields once to the event loop (setImmediate) so timers and
   * other I/O run between rounds: one macrotask per up to maxReads × sockets messages.
   *
   * When every socket is empty, the loop blocks: it "arms" one blocking `receive()` on every
   * socket that has none outstanding (zeromq.js waits on the socket's fd with libuv: no polling,
   * no timers) and sleeps until any of them resolves, then yields once more so every socket that
   * became readable in the same libuv poll phase has resolved too. An armed receive's message is
   * "parked" and counts as the first of that socket's reads in the next round; a socket whose armed
   * receive is still outstanding is skipped (it was empty, and zeromq.js forbids a second
   * concurrent receive). So consecutive reads from one socket are bounded by maxReads whenever
   * another socket has messages waiting at the start of a round (2 × maxReads if they arrive
   * mid-round, as in any round-robin), an idle process costs nothing, and a busy one pays
   * ~1 microtask per message plus 1 macrotask per round.
   */
  private async readLoop(): Promise<void> {
    const pulls = this.pulls;
    const count = pulls.length;
    const maxReads = this.maxReads;
    while (!this.stopping) {
      let total = 0;
      this.inRound = true;
      for (let i = 0; i < count && !this.stopping; i++) {
        const socket = pulls[i] as Pull;
        let reads = 0;
        const parked = this.parked[i];
        if (parked !== undefined) {
          this.parked[i] = undefined;
          this.deliver(parked, i);
          reads = 1;
        } else if (this.armed[i]) {
          // Empty when armed; never touch `readable` here: reading ZMQ_EVENTS behind zeromq.js's
          // back can consume the fd's edge and leave the armed receive asleep on a full socket.
          continue;
        }
        while (reads < maxReads && !this.stopping && socket.readable) {
          let parts: Buffer[];
          try {
            parts = await socket.receive();
          } catch (err) {
            if (!this.stopping) this.readError(err, i);
            break;
          }
          this.deliver(parts, i);
          reads++;
        }
        total += reads;
      }
      this.endRound(total);
      if (this.stopping) break;
      if (total > 0 && this.anyUnarmedReadable()) {
        await yieldToEventLoop(); // more to read: let timers and other I/O run first
        continue;
      }
      await this.waitUntilAnyReadable();
      if (this.stopping) break;
      // Woken by one socket's callback, still inside libuv's poll phase: let the callbacks of every
      // other socket that became readable in the same phase park their message before the round,
      // or that round would skip them (and socket 0 could be read 2N times in a row). With one
      // socket too: a receive armed just as a message came resolves at once, and only this turn
      // then keeps a busy loop from going round after round in microtasks, timers and I/O waiting.
      await yieldToEventLoop();
    }
  }

  private anyUnarmedReadable(): boolean {
    for (let i = 0; i < this.pulls.length; i++) {
      if (this.parked[i] !== undefined) return true;
      if (!this.armed[i] && (this.pulls[i] as Pull).readable) return true;
    }
    return false;
  }

  /** The round's messages are all delivered: the burst-end callback, then the writers of what they sent. */
  private endRound(delivered: number): void {
    if (delivered > 0 && this.onReadBurstEnd !== undefined) {
      try {
        this.onReadBurstEnd();
      } catch (err) {
        this.warnLimited('onReadBurstEnd', { err: errorInfo(err) }, 'onReadBurstEnd threw');
      }
    }
    this.inRound = false;
    const peers = this.startAtRoundEnd;
    if (peers.length === 0) return;
    this.startAtRoundEnd = [];
    for (const peer of peers) this.startWriter(peer);
  }

  /** Arms a blocking receive on every socket that has none outstanding; resolves when one completes. */
  private waitUntilAnyReadable(): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.parked.some((parts) => parts !== undefined)) return resolve(); // (defensive)
      this.wake = resolve;
      for (let i = 0; i < this.pulls.length; i++) {
        if (!this.armed[i] && this.parked[i] === undefined) this.arm(i);
      }
    });
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private arm(i: number): void {
    const socket = this.pulls[i] as Pull;
    let pending: Promise<Buffer[]>;
    try {
      pending = socket.receive();
    } catch (err) {
      this.readError(err, i);
      setTimeout(() => this.wakeUp(), READ_ERROR_BACKOFF_MS).unref();
      return;
    }
    this.armed[i] = true;
    pending.then(
      (parts) => {
        this.armed[i] = false;
        if (this.stopping) return this.wakeUp();
        this.parked[i] = parts;
        this.wakeUp();
      },
      (err: unknown) => {
        this.armed[i] = false;
        if (this.stopping) return this.wakeUp();
        this.readError(err, i);
        setTimeout(() => this.wakeUp(), READ_ERROR_BACKOFF_MS).unref();
      },
    );
  }

  private readError(err: unknown, socketIndex: number): void {
    this.warnLimited(
      `read:${socketIndex}`,
      { socketIndex, endpoint: this.endpoints[socketIndex], err: errorInfo(err) },
      'zmq receive failed',
    );
  }

  /** A message is a bundle of the frames a peer's writer coalesced in one turn (one part; each part if several). */
  private deliver(parts: Buffer[], socketIndex: number): void {
    for (const part of parts) {
      splitBundle(
        part,
        this.maxFrameBytes,
        (frame) => this.deliverFrame(frame, socketIndex),
        (reason) => this.invalidFrame(reason, socketIndex),
      );
    }
  }

  private deliverFrame(frame: Buffer, socketIndex: number): void {
    let result: DecodeResult<T>;
    try {
      result = this.decode(frame);
    } catch (err) {
      this.invalidFrame(`decoder threw: ${errorInfo(err).message}`, socketIndex);
      return;
    }
    if (!result.ok) {
      this.invalidFrame(result.reason, socketIndex);
      return;
    }
    this.counts.received++;
    try {
      this.onMessage(result.value, socketIndex);
    } catch (err) {
      this.warnLimited(
        `onMessage:${socketIndex}`,
        { socketIndex, err: errorInfo(err) },
        'onMessage threw; message lost',
      );
    }
  }

  private invalidFrame(reason: string, socketIndex: number): void {
    this.counts.invalid++;
    this.warnLimited(
      `invalid:${socketIndex}`,
      { socketIndex, endpoint: this.endpoints[socketIndex], reason, invalid: this.counts.invalid },
      'invalid frame dropped',
    );
    if (this.onInvalid) {
      try {
        this.onInvalid(reason, socketIndex);
      } catch (err) {
        this.warnLimited('onInvalid', { err: errorInfo(err) }, 'onInvalid threw');
      }
    }
  }

  // ───────────────────────────── sending ─────────────────────────────

  /**
   * Non-blocking: enqueues `frame` for the peer bound at `endpoint` (a PUSH socket is connected on
   * first use and reconnects by itself if the peer restarts). Returns false if the frame was dropped:
   * transport closing ('closed'), the peer's queue full ('queue-full'), or a malformed endpoint
   * ('send-error', logged; endpoints come from the directory, so a bad one must not crash the role).
   * The frame must not be modified after this call.
   */
  send(endpoint: string, frame: Uint8Array): boolean {
    if (this.closing) {
      this.dropped(endpoint, 'closed', 1);
      return false;
    }
    let peer = this.peers.get(endpoint);
    if (peer === undefined) {
      peer = this.openPeer(endpoint);
      if (peer === undefined) return false;
    }
    peer.used = true;
    if (peer.queue.length - peer.head >= this.maxQueuedPerPeer) {
      this.dropped(endpoint, 'queue-full', 1);
      return false;
    }
    peer.queue.push(frame);
    this.counts.queued++;
    if (!peer.writing) {
      // The writer starts once the read round delivering now has ended, or, for a send from
      // anywhere else (a timer), after this event-loop turn: either way every frame produced
      // meanwhile for this peer leaves in one multipart message, one native send instead of one
      // per frame. Within a round that is the same moment a turn later would be, minus the turn.
      peer.writing = true;
      if (this.inRound) {
        this.startAtRoundEnd.push(peer);
      } else {
        const scheduled = peer;
        setImmediate(() => this.startWriter(scheduled));
      }
    }
    return true;
  }

  private startWriter(peer: Peer): void {
    peer.writer = this.drain(peer).catch((err: unknown) => {
      this.logger?.warn({ endpoint: peer.endpoint, err: errorInfo(err) }, 'zmq peer writer failed');
    });
  }

  private openPeer(endpoint: string): Peer | undefined {
    const parsed = parseEndpoint(endpoint, 'connect');
    if (!parsed.ok) {
      this.dropped(endpoint, 'send-error', 1, { message: parsed.message });
      return undefined;
    }
    const socket = new Push({
      sendHighWaterMark: this.sendHighWaterMark,
      immediate: false, // queue in ZeroMQ until connected (and across reconnects)
      linger: this.lingerMs,
      sendTimeout: this.sendTimeoutMs,
    });
    try {
      socket.connect(endpoint);
    } catch (err) {
      socket.close();
      this.dropped(endpoint, 'send-error', 1, errorInfo(err));
      return undefined;
    }
    const peer: Peer = {
      endpoint,
      socket,
      queue: [],
      head: 0,
      writing: false,
      writer: undefined,
      closed: false,
      used: true,
      idleSince: 0,
    };
    this.peers.set(endpoint, peer);
    this.startSweep();
    this.logger?.debug?.({ endpoint }, 'peer socket connected');
    return peer;
  }

  /**
   * The single writer of one PUSH socket. Each frame is awaited (one send in flight), but
   * zeromq.js resolves a send synchronously while the socket is writable, so a burst costs one
   * microtask per frame. A send that cannot complete within sendTimeoutMs rejects (EAGAIN): that
   * frame is dropped as 'send-error' and the writer goes on.
   */
  private async drain(peer: Peer): Promise<void> {
    peer.writing = true;
    const socket = peer.socket;
    try {
      while (peer.head < peer.queue.length) {
        if (peer.closed) {
          this.discardQueue(peer);
          break;
        }
        const frames = this.nextBundle(peer);
        this.counts.queued -= frames.length;
        try {
          await socket.send(encodeBundle(frames));
          this.counts.sent += frames.length;
        } catch (err) {
          if (peer.closed) this.dropped(peer.endpoint, 'closed', frames.length);
          else this.dropped(peer.endpoint, 'send-error', frames.length, errorInfo(err));
        }
        if (peer.head >= 4096 && peer.head * 2 >= peer.queue.length) {
          peer.queue = peer.queue.slice(peer.head);
          peer.head = 0;
        }
      }
    } finally {
      peer.queue = [];
      peer.head = 0;
      peer.writing = false;
      if (this.drainWaiter !== undefined && this.allDrained()) {
        const waiter = this.drainWaiter;
        this.drainWaiter = undefined;
        waiter();
      }
    }
  }

  /**
   * Takes from the peer's queue the frames of its next message: up to MAX_FRAMES_PER_SEND, and no
   * more bytes than one maximal frame (at least one frame), so a bundle stays within the
   * receiver's ZMQ_MAXMSGSIZE.
   */
  private nextBundle(peer: Peer): Uint8Array[] {
    const limit = Math.min(peer.queue.length, peer.head + MAX_FRAMES_PER_SEND);
    let end = peer.head + 1;
    let bytes = FRAME_HEADER_BYTES + (peer.queue[peer.head] as Uint8Array).length;
    while (end < limit) {
      const next = FRAME_HEADER_BYTES + (peer.queue[end] as Uint8Array).length;
      if (bytes + next > this.maxFrameBytes) break;
      bytes += next;
      end++;
    }
    const frames = peer.queue.slice(peer.head, end) as Uint8Array[];
    peer.queue.fill(undefined, peer.head, end);
    peer.head = end;
    return frames;
  }

  private discardQueue(peer: Peer): void {
    const n = peer.queue.length - peer.head;
    peer.queue = [];
    peer.head = 0;
    if (n > 0) {
      this.counts.queued -= n;
      this.dropped(peer.endpoint, 'closed', n);
    }
  }

  private dropped(endpoint: string, reason: DropReason, n: number, err?: object): void {
    this.counts.dropped += n;
    this.warnLimited(
      `drop:${endpoint}`,
      { endpoint, reason, frames: n, dropped: this.counts.dropped, ...(err ? { err } : {}) },
      reason === 'queue-full'
        ? 'peer queue full; frame dropped'
        : reason === 'closed'
          ? 'transport or peer socket closed; frame dropped'
          : 'send failed; frame dropped',
    );
    if (this.onDrop) {
      for (let k = 0; k < n; k++) {
        try {
          this.onDrop(endpoint, reason);
        } catch (e) {
          this.warnLimited('onDrop', { err: errorInfo(e) }, 'onDrop threw');
        }
      }
    }
  }

  private warnLimited(key: string, obj: object, msg: string): void {
    if (this.logger === undefined) return;
    const suppressed = this.limiter.allow(key, Date.now());
    if (suppressed < 0) return;
    this.logger.warn(suppressed > 0 ? { ...obj, suppressed } : obj, msg);
  }

  // ───────────────────────────── idle peers ─────────────────────────────

  private startSweep(): void {
    if (this.sweepTimer !== undefined || this.peerIdleMs === 0 || !Number.isFinite(this.peerIdleMs)) return;
    const interval = Math.max(10, Math.floor(this.peerIdleMs / 2));
    this.sweepTimer = setInterval(() => this.sweepIdlePeers(), interval);
    this.sweepTimer.unref();
  }

  /** Closes peers not sent to for peerIdleMs (precision: peerIdleMs / 2). Stops itself when no peers remain. */
  private sweepIdlePeers(): void {
    const now = Date.now();
    for (const peer of this.peers.values()) {
      if (peer.used) {
        peer.used = false;
        peer.idleSince = now;
        continue;
      }
      if (peer.writing || peer.head < peer.queue.length) continue;
      if (now - peer.idleSince >= this.peerIdleMs) {
        this.logger?.debug?.({ endpoint: peer.endpoint }, 'closing idle peer socket');
        this.closePeer(peer, this.lingerMs);
      }
    }
    if (this.peers.size === 0 && this.sweepTimer !== undefined) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
    }
  }

  private closePeer(peer: Peer, lingerMs: number): void {
    if (peer.closed) return;
    peer.closed = true;
    this.peers.delete(peer.endpoint);
    if (!peer.writing) this.discardQueue(peer); // (always empty here; the writer discards otherwise)
    peer.socket.linger = Math.max(0, Math.round(lingerMs));
    peer.socket.close(); // an in-flight send rejects; its writer counts that frame 'closed'
  }

  // ───────────────────────────── closing ─────────────────────────────

  private allDrained(): boolean {
    for (const peer of this.peers.values()) {
      if (peer.writing || peer.head < peer.queue.length) return false;
    }
    return true;
  }

  /**
   * Stops reading (closes the PULL sockets, freeing the ports), lets each peer's writer hand its
   * queued frames to ZeroMQ for up to lingerMs, then closes every PUSH socket with ZMQ_LINGER set
   * to the time left, so ZeroMQ keeps delivering what it holds in the background until then.
   * Frames still queued at the deadline are dropped as 'closed'. Idempotent; never rejects.
   */
  close(options?: { lingerMs?: number }): Promise<void> {
    if (this.closePromise === undefined) {
      const lingerMs = nonNegative('lingerMs', options?.lingerMs, this.lingerMs);
      this.closePromise = this.shutdown(lingerMs).catch((err: unknown) => {
        this.logger?.warn({ err: errorInfo(err) }, 'zmq transport close failed');
      });
    }
    return this.closePromise;
  }

  private async shutdown(lingerMs: number): Promise<void> {
    const deadline = performance.now() + lingerMs;
    this.closing = true;
    this.stopping = true;
    if (this.sweepTimer !== undefined) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
    }
    for (const pull of this.pulls) pull.close(); // armed receives reject; the loop sees `stopping`
    this.wakeUp();
    const released = Promise.all(
      this.endpoints.map((endpoint) => waitUntilReleased(endpoint, PORT_RELEASE_TIMEOUT_MS)),
    );
    await this.readLoopDone;

    if (!this.allDrained()) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.drainWaiter = resolve;
        timer = setTimeout(resolve, Math.max(0, deadline - performance.now()));
      });
      clearTimeout(timer);
      this.drainWaiter = undefined;
    }
    const remaining = Math.max(0, deadline - performance.now());
    const writers: Promise<void>[] = [];
    for (const peer of [...this.peers.values()]) {
      if (peer.writer !== undefined) writers.push(peer.writer);
      this.closePeer(peer, remaining);
    }
    await Promise.all(writers);
    const freed = await released;
    const held = this.endpoints.filter((_, i) => !freed[i]);
    if (held.length > 0) this.logger?.warn({ endpoints: held }, 'ports still bound after close');
  }
}
