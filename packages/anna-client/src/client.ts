/**
 * A client for Anna's wire protocol (hydro-project/anna, hydro-project/common proto/anna.proto).
 *
 * Socket pattern (the same as Anna's C++ and Python clients):
 * - the client binds two PULL sockets, one for routing answers (KeyAddressResponse) and one
 *   for storage answers (KeyResponse), and puts their full endpoints (`tcp://host:port`) in
 *   `response_address`;
 * - it PUSHes a KeyAddressRequest to a routing node (port 6450 in Anna's local mode) to learn
 *   which storage threads own a key (`ips`: full endpoints such as `tcp://10.0.0.7:6200`),
 *   caches them, and PUSHes KeyRequests (one key each) to one of them;
 * - answers are matched to requests by `request_id` / `response_id`.
 *
 * Failure handling: NO_SERVERS (no storage node joined yet) and silence are retried with
 * exponential back-off; WRONG_THREAD and `invalidate` drop the cached address so the next
 * attempt asks routing again; KEY_DNE is "no value" (null); a reply whose lattice type is not
 * the one asked for is an `AnnaError` with code 'LATTICE' (real Anna ignores a PUT of the wrong
 * lattice type without an error and answers a GET with whatever lattice is stored).
 */

import { randomBytes } from 'node:crypto';
import type * as zmq from 'zeromq';
import {
  bindPull,
  endpointPort,
  isWildcardHost,
  type Logger,
  PushQueue,
  readLoop,
  silentLogger,
  tcpEndpoint,
} from './sockets.ts';
import {
  AnnaErrorType,
  annaErrorName,
  decodeKeyAddressResponse,
  decodeKeyResponse,
  decodeLwwValue,
  decodeSetValue,
  encodeKeyAddressRequest,
  encodeKeyRequest,
  encodeLwwValue,
  encodeSetValue,
  type KeyAddressResponse,
  type KeyResponse,
  type KeyTuple,
  LatticeType,
  latticeTypeName,
  RequestType,
} from './wire.ts';

/** Default port of Anna's routing tier (key-address requests). */
export const ANNA_ROUTING_PORT = 6450;
/** Default port of Anna's storage threads (key requests), plus the thread id. */
export const ANNA_STORAGE_PORT = 6200;

export type AnnaErrorCode =
  | 'TIMEOUT'
  | 'NO_SERVERS'
  | 'WRONG_THREAD'
  | 'LATTICE'
  | 'PROTOCOL'
  | 'CLOSED'
  | 'BIND'
  | 'ADDRESS_IN_USE'
  | 'CONFIG';

/** Every failure of this package. `code` says what kind; the message names the key and endpoint. */
export class AnnaError extends Error {
  override readonly name = 'AnnaError';
  readonly code: AnnaErrorCode;
  readonly key: string | undefined;
  readonly endpoint: string | undefined;
  /** For 'LATTICE': the lattice type asked for and the one Anna holds (names from anna.proto). */
  readonly expected: string | undefined;
  readonly actual: string | undefined;

  constructor(
    code: AnnaErrorCode,
    message: string,
    details: {
      key?: string;
      endpoint?: string;
      expected?: string;
      actual?: string;
      cause?: unknown;
    } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.key = details.key;
    this.endpoint = details.endpoint;
    this.expected = details.expected;
    this.actual = details.actual;
  }
}

export interface AnnaClientOptions {
  /**
   * Routing node(s): a full endpoint such as 'tcp://127.0.0.1:6450', or a comma-separated list
   * (one is picked per request, round robin). A bare `host` or `host:port` is accepted too
   * (`tcp://` is added, and port 6450 when none is given), as the original's ANNA_ROUTING was.
   */
  routing: string;
  /** Interface our PULL response sockets bind on (ephemeral ports). Default 127.0.0.1. */
  responseHost?: string;
  /**
   * Host Anna should send responses to (the host part of `response_address`). Default:
   * `responseHost`; required when `responseHost` is a wildcard such as 0.0.0.0.
   */
  advertiseHost?: string;
  /** Per attempt: how long to wait for a routing or storage answer. Default 1000 ms. */
  timeoutMs?: number;
  /** Attempts after the first one. Default 5. */
  retries?: number;
  /** First back-off between attempts; doubles each attempt. Default 50 ms. */
  backoffMs?: number;
  /** Back-off cap. Default 1000 ms. */
  maxBackoffMs?: number;
  /** A pino logger (or anything with debug/info/warn/error). Default: silent. */
  logger?: Logger;
}

export interface LwwRead {
  timestamp: number;
  value: Uint8Array;
}

interface Pending<T> {
  resolve: (value: T | undefined) => void;
  timer: NodeJS.Timeout;
}

/** Outcome of one attempt: a usable tuple, or a retryable error. */
type Attempt = { tuple: KeyTuple } | { retry: AnnaError };

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: false });

function parseRouting(routing: string): string[] {
  const endpoints = routing
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      if (s.includes('://')) return s;
      return /:\d+$/.test(s) ? `tcp://${s}` : `tcp://${s}:${ANNA_ROUTING_PORT}`;
    });
  if (endpoints.length === 0) {
    throw new AnnaError(
      'CONFIG',
      `routing must name at least one routing node (e.g. 'tcp://127.0.0.1:${ANNA_ROUTING_PORT}'), got '${routing}'`,
    );
  }
  return endpoints;
}

/** The client's timeouts and retries, validated, with their defaults applied. */
interface RetryLimits {
  readonly timeoutMs: number;
  readonly retries: number;
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
}

function checkCount(name: string, value: number, min: number): number {
  if (!Number.isFinite(value) || value < min || !Number.isInteger(value)) {
    throw new AnnaError('CONFIG', `${name} must be an integer >= ${min}, got ${value}`);
  }
  return value;
}

export class AnnaClient {
  /** The routing endpoints requests go to. */
  readonly routingEndpoints: readonly string[];
  /** `response_address` of our KeyAddressRequests. */
  readonly addressResponseEndpoint: string;
  /** `response_address` of our KeyRequests. */
  readonly keyResponseEndpoint: string;

  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly log: Logger;
  private readonly addressPull: zmq.Pull;
  private readonly keyPull: zmq.Pull;
  private readonly loops: Promise<void>[];
  private readonly pushers = new Map<string, PushQueue>();
  private readonly pendingAddress = new Map<string, Pending<KeyAddressResponse>>();
  private readonly pendingKey = new Map<string, Pending<KeyResponse>>();
  private readonly addressCache = new Map<string, string[]>();
  private readonly resolving = new Map<string, Promise<string[] | AnnaError>>();
  private readonly sleeps = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  private readonly idPrefix: string;
  private nextRequest = 0;
  private nextRouting: number;
  private closed = false;

  private constructor(
    options: AnnaClientOptions,
    limits: RetryLimits,
    routing: string[],
    addressPull: { socket: zmq.Pull; endpoint: string },
    keyPull: { socket: zmq.Pull; endpoint: string },
    advertiseHost: string,
  ) {
    this.routingEndpoints = routing;
    this.timeoutMs = limits.timeoutMs;
    this.retries = limits.retries;
    this.backoffMs = limits.backoffMs;
    this.maxBackoffMs = limits.maxBackoffMs;
    this.log = options.logger ?? silentLogger;
    this.addressPull = addressPull.socket;
    this.keyPull = keyPull.socket;
    this.addressResponseEndpoint = advertise(addressPull.endpoint, advertiseHost);
    this.keyResponseEndpoint = advertise(keyPull.endpoint, advertiseHost);
    this.nextRouting = Math.floor(Math.random() * routing.length);
    // Anna's clients use "ip:tid_n"; ours adds a random session so a restarted client on a
    // reused port never takes an old answer for a new request.
    const port = endpointPort(this.keyResponseEndpoint) ?? 0;
    this.idPrefix = `${advertiseHost}:${port}_${randomBytes(4).toString('hex')}_`;
    this.loops = [
      readLoop(this.addressPull, (f) => this.onAddressResponse(f), this.log, 'anna-client address responses'),
      readLoop(this.keyPull, (f) => this.onKeyResponse(f), this.log, 'anna-client key responses'),
    ];
  }

  /** Binds the two response sockets and returns a ready client. Nothing is sent yet. */
  static async connect(options: AnnaClientOptions): Promise<AnnaClient> {
    const routing = parseRouting(options.routing);
    const limits: RetryLimits = {
      timeoutMs: checkCount('timeoutMs', options.timeoutMs ?? 1000, 1),
      retries: checkCount('retries', options.retries ?? 5, 0),
      backoffMs: checkCount('backoffMs', options.backoffMs ?? 50, 0),
      maxBackoffMs: checkCount('maxBackoffMs', options.maxBackoffMs ?? 1000, 0),
    };
    const responseHost = options.responseHost ?? '127.0.0.1';
    const advertiseHost = options.advertiseHost ?? responseHost;
    if (isWildcardHost(advertiseHost)) {
      throw new AnnaError(
        'CONFIG',
        `responseHost '${responseHost}' binds every interface; set advertiseHost to the address Anna should answer to`,
      );
    }
    const bindTo = tcpEndpoint(responseHost, '*');
    const pulls: { socket: zmq.Pull; endpoint: string }[] = [];
    try {
      pulls.push(await bindPull(bindTo));
      pulls.push(await bindPull(bindTo));
    } catch (err) {
      for (const p of pulls) p.socket.close();
      throw new AnnaError('BIND', `cannot bind a response socket on ${bindTo}: ${(err as Error).message}`, {
        endpoint: bindTo,
        cause: err,
      });
    }
    const [addressPull, keyPull] = pulls as [
      { socket: zmq.Pull; endpoint: string },
      { socket: zmq.Pull; endpoint: string },
    ];
    return new AnnaClient(options, limits, routing, addressPull, keyPull, advertiseHost);
  }

  /** The members of a SET key (values decoded as UTF-8), or null when the key does not exist. */
  async getSet(key: string): Promise<Set<string> | null> {
    const tuple = await this.keyRequest(RequestType.GET, key, LatticeType.SET);
    if (tuple.error === AnnaErrorType.KEY_DNE) return null;
    if (tuple.latticeType !== LatticeType.SET) {
      throw this.latticeMismatch('GET', key, LatticeType.SET, tuple.latticeType);
    }
    const values = decodeSetValue(tuple.payload);
    if (values === undefined) {
      throw new AnnaError('PROTOCOL', `Anna returned an undecodable SetValue for key '${key}'`, { key });
    }
    return new Set(values.map((v) => fromUtf8.decode(v)));
  }

  /** Adds `values` to the SET key (Anna merges by union; the key is created if missing). */
  async addToSet(key: string, values: Iterable<string>): Promise<void> {
    const payload = encodeSetValue([...values].map((v) => utf8.encode(v)));
    const tuple = await this.keyRequest(RequestType.PUT, key, LatticeType.SET, payload);
    if (tuple.latticeType !== LatticeType.SET) {
      throw await this.putMismatch(key, LatticeType.SET, tuple.latticeType);
    }
  }

  /** The LWW value of a key, or null when the key does not exist (Anna: or its value is empty). */
  async getLww(key: string): Promise<LwwRead | null> {
    const tuple = await this.keyRequest(RequestType.GET, key, LatticeType.LWW);
    if (tuple.error === AnnaErrorType.KEY_DNE) return null;
    if (tuple.latticeType !== LatticeType.LWW) {
      throw this.latticeMismatch('GET', key, LatticeType.LWW, tuple.latticeType);
    }
    const lww = decodeLwwValue(tuple.payload);
    if (lww === undefined) {
      throw new AnnaError('PROTOCOL', `Anna returned an undecodable LWWValue for key '${key}'`, { key });
    }
    return { timestamp: Number(lww.timestamp), value: lww.value };
  }

  /**
   * Writes an LWW value: Anna keeps the write with the highest timestamp. `timestamp` must be
   * a non-negative safe integer (it is a uint64 on the wire).
   */
  async putLww(key: string, value: Uint8Array, timestamp: number): Promise<void> {
    if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
      throw new RangeError(`putLww: timestamp must be a non-negative safe integer, got ${timestamp}`);
    }
    const payload = encodeLwwValue({ timestamp: BigInt(timestamp), value });
    const tuple = await this.keyRequest(RequestType.PUT, key, LatticeType.LWW, payload);
    if (tuple.latticeType !== LatticeType.LWW) {
      throw await this.putMismatch(key, LatticeType.LWW, tuple.latticeType);
    }
  }

  /**
   * Stops the read loops and closes every socket (linger 0). Requests still waiting fail with
   * AnnaError 'CLOSED'. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.sleeps) {
      clearTimeout(s.timer);
      s.resolve();
    }
    this.sleeps.clear();
    for (const pending of [this.pendingAddress, this.pendingKey] as Map<string, Pending<unknown>>[]) {
      for (const p of pending.values()) {
        clearTimeout(p.timer);
        p.resolve(undefined);
      }
      pending.clear();
    }
    for (const p of this.pushers.values()) p.close();
    this.pushers.clear();
    this.addressPull.close();
    this.keyPull.close();
    await Promise.all(this.loops);
  }

  // -------------------------------------------------------------------------------------------
  // request machinery

  /** One key, one request type; retried until a usable tuple arrives or attempts run out. */
  private async keyRequest(
    type: RequestType,
    key: string,
    lattice: LatticeType,
    payload?: Uint8Array,
    attempts = this.retries + 1,
  ): Promise<KeyTuple> {
    const what = `${type === RequestType.GET ? 'GET' : 'PUT'} of key '${key}'`;
    let last: AnnaError | undefined;
    for (let attempt = 0; attempt < attempts; attempt++) {
      this.assertOpen(what);
      if (attempt > 0) {
        await this.sleep(Math.min(this.maxBackoffMs, this.backoffMs * 2 ** (attempt - 1)));
        this.assertOpen(what);
      }
      const outcome = await this.attempt(type, key, lattice, payload);
      if ('tuple' in outcome) return outcome.tuple;
      last = outcome.retry;
      this.log.debug({ key, attempt, code: last.code, err: last.message }, 'anna request failed; retrying');
    }
    const cause = last as AnnaError;
    const routing = this.routingEndpoints.join(',');
    const tail = `after ${attempts} attempt${attempts === 1 ? '' : 's'} (timeout ${this.timeoutMs} ms each, routing ${routing})`;
    const message =
      cause.code === 'TIMEOUT'
        ? `Anna did not answer the ${what} ${tail}; last: ${cause.message}`
        : `${what} failed ${tail}: ${cause.message}`;
    throw new AnnaError(cause.code, message, { key, endpoint: cause.endpoint ?? routing, cause });
  }

  private async attempt(
    type: RequestType,
    key: string,
    lattice: LatticeType,
    payload: Uint8Array | undefined,
  ): Promise<Attempt> {
    const addresses = await this.resolve(key);
    if (addresses instanceof AnnaError) return { retry: addresses };
    const target = addresses[Math.floor(Math.random() * addresses.length)] as string;
    const requestId = this.newRequestId();
    const frame = encodeKeyRequest({
      type,
      tuples: [
        {
          key,
          latticeType: lattice,
          addressCacheSize: addresses.length,
          ...(payload === undefined ? {} : { payload }),
        },
      ],
      responseAddress: this.keyResponseEndpoint,
      requestId,
    });
    const push = this.pusher(target);
    const reply = this.await(this.pendingKey, requestId);
    push.send(frame);
    const response = await reply;
    if (response === undefined) {
      this.assertOpen(`request for key '${key}'`);
      // As Anna's C++ client does: a silent storage node may be gone, so ask routing again.
      this.addressCache.delete(key);
      return {
        retry: new AnnaError(
          'TIMEOUT',
          `storage node ${target} did not answer within ${this.timeoutMs} ms for key '${key}'`,
          { key, endpoint: target },
        ),
      };
    }
    if (response.error !== AnnaErrorType.NO_ERROR) {
      return { retry: this.errorFor(response.error, key, target, 'storage node') };
    }
    const tuple = response.tuples.find((t) => t.key === key);
    if (tuple === undefined) {
      return {
        retry: new AnnaError('PROTOCOL', `storage node ${target} answered without a tuple for key '${key}'`, {
          key,
          endpoint: target,
        }),
      };
    }
    if (tuple.invalidate) this.addressCache.delete(key);
    switch (tuple.error) {
      case AnnaErrorType.NO_ERROR:
      case AnnaErrorType.KEY_DNE:
        return { tuple };
      case AnnaErrorType.WRONG_THREAD:
        this.addressCache.delete(key);
        return { retry: this.errorFor(tuple.error, key, target, 'storage node') };
      case AnnaErrorType.TIMEOUT:
      case AnnaErrorType.NO_SERVERS:
        return { retry: this.errorFor(tuple.error, key, target, 'storage node') };
      case AnnaErrorType.LATTICE:
        throw new AnnaError(
          'LATTICE',
          `storage node ${target} rejected the lattice type of key '${key}' (asked for ${latticeTypeName(lattice)})`,
          {
            key,
            endpoint: target,
            expected: latticeTypeName(lattice),
            actual: latticeTypeName(tuple.latticeType),
          },
        );
      default:
        throw new AnnaError(
          'PROTOCOL',
          `storage node ${target} answered key '${key}' with unknown error ${annaErrorName(tuple.error)}`,
          { key, endpoint: target },
        );
    }
  }

  /** Storage endpoints for `key`: cached, or asked of a routing node (one request per key at a time). */
  private resolve(key: string): Promise<string[] | AnnaError> {
    const cached = this.addressCache.get(key);
    if (cached !== undefined && cached.length > 0) return Promise.resolve(cached);
    const inFlight = this.resolving.get(key);
    if (inFlight !== undefined) return inFlight;
    const promise = this.askRouting(key).finally(() => this.resolving.delete(key));
    this.resolving.set(key, promise);
    return promise;
  }

  private async askRouting(key: string): Promise<string[] | AnnaError> {
    const routing = this.routingEndpoints[this.nextRouting++ % this.routingEndpoints.length] as string;
    const requestId = this.newRequestId();
    const push = this.pusher(routing);
    const reply = this.await(this.pendingAddress, requestId);
    push.send(
      encodeKeyAddressRequest({ responseAddress: this.addressResponseEndpoint, keys: [key], requestId }),
    );
    const response = await reply;
    if (response === undefined) {
      if (this.closed) return new AnnaError('CLOSED', 'the Anna client is closed', { key });
      return new AnnaError(
        'TIMEOUT',
        `routing node ${routing} did not answer the address request for key '${key}' within ${this.timeoutMs} ms`,
        { key, endpoint: routing },
      );
    }
    if (response.error !== AnnaErrorType.NO_ERROR) {
      return this.errorFor(response.error, key, routing, 'routing node');
    }
    const ips = (response.addresses.find((a) => a.key === key)?.ips ?? []).filter((ip) => ip.length > 0);
    if (ips.length === 0) {
      return new AnnaError(
        'NO_SERVERS',
        `routing node ${routing} returned no storage address for key '${key}'`,
        {
          key,
          endpoint: routing,
        },
      );
    }
    if (this.addressCache.size >= 100_000) this.addressCache.clear();
    this.addressCache.set(key, ips);
    return ips;
  }

  private errorFor(error: number, key: string, endpoint: string, who: string): AnnaError {
    const name = annaErrorName(error);
    const explain: Record<string, string> = {
      NO_SERVERS: 'no storage node has joined the cluster yet',
      WRONG_THREAD: 'that storage thread does not own the key; asking routing again',
      TIMEOUT: 'Anna timed the request out',
    };
    const code: AnnaErrorCode =
      name === 'NO_SERVERS' || name === 'WRONG_THREAD' || name === 'TIMEOUT' || name === 'LATTICE'
        ? name
        : 'PROTOCOL';
    return new AnnaError(
      code,
      `${who} ${endpoint} answered ${name} for key '${key}'${explain[name] ? ` (${explain[name]})` : ''}`,
      { key, endpoint },
    );
  }

  private latticeMismatch(op: string, key: string, expected: number, actual: number): AnnaError {
    const exp = latticeTypeName(expected);
    const act = latticeTypeName(actual);
    return new AnnaError(
      'LATTICE',
      `lattice type mismatch for key '${key}': ${op} expected ${exp} but Anna holds ${act}`,
      { key, expected: exp, actual: act },
    );
  }

  /**
   * Anna ignores a PUT whose lattice type differs from the stored one: it answers NO_ERROR with
   * no lattice type. Ask (once) what the key holds, to name it in the error.
   */
  private async putMismatch(key: string, expected: number, replied: number): Promise<AnnaError> {
    let actual = replied;
    if (replied === LatticeType.NONE) {
      try {
        const probe = await this.keyRequest(RequestType.GET, key, LatticeType.NONE, undefined, 2);
        actual = probe.latticeType;
      } catch (err) {
        this.log.debug({ key, err }, 'could not read the lattice type of a key after a rejected PUT');
      }
    }
    const exp = latticeTypeName(expected);
    const act = actual === LatticeType.NONE ? 'NONE (unknown)' : latticeTypeName(actual);
    return new AnnaError(
      'LATTICE',
      `lattice type mismatch for key '${key}': PUT as ${exp} was ignored by Anna because the key holds ${act}`,
      { key, expected: exp, actual: act },
    );
  }

  // -------------------------------------------------------------------------------------------
  // plumbing

  private onAddressResponse(frame: Buffer): void {
    const response = decodeKeyAddressResponse(frame);
    if (response === undefined) {
      this.log.warn({ bytes: frame.length }, 'undecodable KeyAddressResponse dropped');
      return;
    }
    this.settle(this.pendingAddress, response.responseId, response);
  }

  private onKeyResponse(frame: Buffer): void {
    const response = decodeKeyResponse(frame);
    if (response === undefined) {
      this.log.warn({ bytes: frame.length }, 'undecodable KeyResponse dropped');
      return;
    }
    this.settle(this.pendingKey, response.responseId, response);
  }

  private settle<T>(pending: Map<string, Pending<T>>, id: string, value: T): void {
    const p = pending.get(id);
    if (p === undefined) {
      this.log.debug({ id }, 'late or unknown Anna response dropped');
      return;
    }
    pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(value);
  }

  /** Resolves with the response, or undefined after timeoutMs or on close. Never rejects. */
  private await<T>(pending: Map<string, Pending<T>>, id: string): Promise<T | undefined> {
    return new Promise<T | undefined>((resolve) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        resolve(undefined);
      }, this.timeoutMs);
      pending.set(id, { resolve, timer });
    });
  }

  private pusher(endpoint: string): PushQueue {
    let p = this.pushers.get(endpoint);
    if (p === undefined) {
      try {
        p = new PushQueue(endpoint, { sendTimeoutMs: this.timeoutMs, logger: this.log });
      } catch (err) {
        throw new AnnaError('CONFIG', `cannot connect to ${endpoint}: ${(err as Error).message}`, {
          endpoint,
          cause: err,
        });
      }
      this.pushers.set(endpoint, p);
    }
    return p;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const entry = {
        resolve,
        timer: setTimeout(() => {
          this.sleeps.delete(entry);
          resolve();
        }, ms),
      };
      this.sleeps.add(entry);
    });
  }

  private newRequestId(): string {
    return `${this.idPrefix}${this.nextRequest++}`;
  }

  private assertOpen(what: string): void {
    if (this.closed) throw new AnnaError('CLOSED', `the Anna client is closed (${what})`);
  }
}

function advertise(boundEndpoint: string, host: string): string {
  const port = endpointPort(boundEndpoint);
  return port === undefined ? boundEndpoint : tcpEndpoint(host, port);
}
