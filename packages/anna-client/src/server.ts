/**
 * A local Anna-compatible server: one routing node and one storage thread in one process,
 * speaking Anna's wire protocol, so `AnnaClient` (or Anna's own clients) can use it unchanged.
 *
 * Routing (PULL, default port 6450): a KeyAddressRequest is answered with the storage
 * endpoint for every key (`ips = ['tcp://host:6200']`), or NO_SERVERS while the simulated
 * "storage not joined yet" window lasts.
 *
 * Storage (PULL, default port 6200): key → { lattice type, value }. What real Anna does, and so
 * does this server (src/kvs/user_request_handler.cpp, include/kvs/server_utils.hpp):
 * - GET of a missing key → tuple { key, error KEY_DNE }; GET of an existing key → the stored
 *   lattice type and payload, whatever lattice type the request named; an empty SET or an LWW
 *   value with empty bytes also reads as KEY_DNE (with the lattice type and payload).
 * - PUT merges: SET by union, LWW by timestamp (on a tie the incoming write wins, as in Anna's
 *   `LWWPairLattice::do_merge`), ORDERED_SET by union.
 * - A request tuple whose `address_cache_size` (how many storage threads the client cached for
 *   the key) is set and differs from the threads that own the key here (one) is answered with
 *   `invalidate` set: the client must ask routing again.
 * - PUT without a lattice type, or with one that differs from the stored key's, is ignored and
 *   answered with a tuple { key } (lattice type NONE, error NO_ERROR): the client must notice
 *   that the reply's lattice type is not the one it wrote.
 * - Answers go to `response_address` over a PUSH socket per address; no address, no answer.
 * Lattices this server does not store (causal, priority) and undecodable payloads are answered
 * with error LATTICE.
 */

import { waitUntilReleased } from '@paxos/transport-zmq';
import type * as zmq from 'zeromq';
import { AnnaError } from './client.ts';
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
  decodeKeyAddressRequest,
  decodeKeyRequest,
  decodeLwwValue,
  decodeSetValue,
  encodeKeyAddressResponse,
  encodeKeyResponse,
  encodeLwwValue,
  encodeSetValue,
  type KeyRequest,
  type KeyTuple,
  type KeyTupleInit,
  LatticeType,
  latticeTypeName,
  RequestType,
  requestTypeName,
} from './wire.ts';

export interface LocalAnnaFaults {
  /** Answer NO_SERVERS to address requests for this long after start (storage not joined yet). */
  noServersForMs?: number;
  /** Answer the first KeyRequest for each key with WRONG_THREAD. */
  wrongThreadOnce?: boolean;
  /** Ignore the first N requests (address or key) entirely. */
  dropFirstRequests?: number;
  /**
   * Routing lists the storage endpoint this many times for every key (as if it had that many
   * replicas, a stale view of the cluster): clients then send an address cache size that the one
   * storage thread does not match, and its replies carry `invalidate`.
   */
  routingReplicas?: number;
}

export interface LocalAnnaOptions {
  /** Interface to bind. Default 127.0.0.1. */
  host?: string;
  /**
   * Host put into the endpoints handed to clients (routing answers, `routingEndpoint`).
   * Default: `host`, or 127.0.0.1 when `host` is a wildcard (0.0.0.0, *).
   */
  publicHost?: string;
  /** Routing (key-address) port. Default 6450; 0 picks a free port. */
  routingPort?: number;
  /** Storage (key-request) port. Default 6200; 0 picks a free port. */
  storagePort?: number;
  logger?: Logger;
  faults?: LocalAnnaFaults;
}

export interface LocalAnnaStats {
  addressRequests: number;
  keyRequests: number;
  droppedRequests: number;
  invalidFrames: number;
  /** Replies sent with `invalidate` (the client's cached address count was stale). */
  invalidations: number;
  keys: number;
}

export interface LocalAnna {
  /** Where clients send KeyAddressRequests, e.g. 'tcp://127.0.0.1:6450'. */
  readonly routingEndpoint: string;
  /** The storage endpoint routing hands out, e.g. 'tcp://127.0.0.1:6200'. */
  readonly storageEndpoint: string;
  /** Counters, for tests and logs. */
  stats(): LocalAnnaStats;
  /** Stops both loops and closes every socket (linger 0); the ports are free when it resolves. */
  close(): Promise<void>;
}

type Stored =
  | { type: typeof LatticeType.LWW; timestamp: bigint; value: Uint8Array }
  | { type: typeof LatticeType.SET | typeof LatticeType.ORDERED_SET; values: Map<string, Uint8Array> };

const MAX_RESPONDERS = 512;

function checkPort(name: string, port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new AnnaError('CONFIG', `${name} must be an integer port 0-65535, got ${port}`);
  }
  return port;
}

async function bindOrExplain(
  what: string,
  host: string,
  port: number,
): Promise<{ socket: zmq.Pull; endpoint: string }> {
  const endpoint = tcpEndpoint(host, port === 0 ? '*' : port);
  try {
    return await bindPull(endpoint);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'EADDRINUSE') {
      throw new AnnaError(
        'ADDRESS_IN_USE',
        `cannot listen for ${what} on ${endpoint}: address already in use`,
        {
          endpoint,
          cause: err,
        },
      );
    }
    throw new AnnaError('BIND', `cannot listen for ${what} on ${endpoint}: ${(err as Error).message}`, {
      endpoint,
      cause: err,
    });
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

function bytesKey(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}

class LocalAnnaServer implements LocalAnna {
  readonly routingEndpoint: string;
  readonly storageEndpoint: string;
  private readonly routing: { socket: zmq.Pull; endpoint: string };
  private readonly storage: { socket: zmq.Pull; endpoint: string };
  private readonly log: Logger;
  private readonly faults: LocalAnnaFaults;
  private readonly startedAt = Date.now();
  private readonly store = new Map<string, Stored>();
  private readonly responders = new Map<string, PushQueue>();
  private readonly wrongThreadDone = new Set<string>();
  private readonly loops: Promise<void>[];
  private toDrop: number;
  private closing: Promise<void> | undefined;
  private readonly counters = {
    addressRequests: 0,
    keyRequests: 0,
    droppedRequests: 0,
    invalidFrames: 0,
    invalidations: 0,
  };

  constructor(
    routing: { socket: zmq.Pull; endpoint: string },
    storage: { socket: zmq.Pull; endpoint: string },
    publicHost: string,
    log: Logger,
    faults: LocalAnnaFaults,
  ) {
    this.routing = routing;
    this.storage = storage;
    this.log = log;
    this.faults = faults;
    this.toDrop = faults.dropFirstRequests ?? 0;
    // bindPull answers with the resolved endpoint, which always ends in its port.
    this.routingEndpoint = tcpEndpoint(publicHost, endpointPort(routing.endpoint) as number);
    this.storageEndpoint = tcpEndpoint(publicHost, endpointPort(storage.endpoint) as number);
    this.loops = [
      readLoop(routing.socket, (f) => this.onRouting(f), log, 'anna-local routing'),
      readLoop(storage.socket, (f) => this.onStorage(f), log, 'anna-local storage'),
    ];
  }

  stats(): LocalAnnaStats {
    return { ...this.counters, keys: this.store.size };
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    for (const r of this.responders.values()) r.close();
    this.responders.clear();
    // Not unbind(): unbinding a socket with live peers trips a libzmq assertion (pipe.cpp:355)
    // now and then. close() releases the listener asynchronously, so wait until the ports can
    // be bound again: a restart on the same ports then succeeds at once.
    for (const p of [this.routing, this.storage]) p.socket.close();
    await Promise.all([this.routing.endpoint, this.storage.endpoint].map((e) => waitUntilReleased(e, 2000)));
    await Promise.all(this.loops);
    this.log.info({ routing: this.routingEndpoint, storage: this.storageEndpoint }, 'anna-local closed');
  }

  private drop(): boolean {
    if (this.toDrop <= 0) return false;
    this.toDrop--;
    this.counters.droppedRequests++;
    return true;
  }

  private respond(address: string, frame: Uint8Array): void {
    if (address === '' || this.closing !== undefined) return;
    let r = this.responders.get(address);
    if (r === undefined) {
      try {
        r = new PushQueue(address, { sendTimeoutMs: 1000, maxQueued: 1000, logger: this.log });
      } catch (err) {
        this.log.warn({ address, err }, 'bad response_address; answer dropped');
        return;
      }
      if (this.responders.size >= MAX_RESPONDERS) {
        const oldest = this.responders.keys().next().value;
        if (oldest !== undefined) {
          this.responders.get(oldest)?.close();
          this.responders.delete(oldest);
        }
      }
    } else {
      this.responders.delete(address); // re-insert: Map order is our LRU order
    }
    this.responders.set(address, r);
    r.send(frame);
  }

  // ---- routing --------------------------------------------------------------------------

  private onRouting(frame: Buffer): void {
    const request = decodeKeyAddressRequest(frame);
    if (request === undefined) {
      this.counters.invalidFrames++;
      this.log.warn({ bytes: frame.length }, 'undecodable KeyAddressRequest dropped');
      return;
    }
    this.counters.addressRequests++;
    if (this.drop()) {
      this.log.debug({ id: request.requestId }, 'fault: address request dropped');
      return;
    }
    const noServers = Date.now() - this.startedAt < (this.faults.noServersForMs ?? 0);
    const response = noServers
      ? {
          error: AnnaErrorType.NO_SERVERS,
          addresses: request.keys.map((key) => ({ key, ips: [] })),
          responseId: request.requestId,
        }
      : {
          addresses: request.keys.map((key) => ({
            key,
            ips: Array.from({ length: this.faults.routingReplicas ?? 1 }, () => this.storageEndpoint),
          })),
          responseId: request.requestId,
        };
    this.log.debug({ keys: request.keys, noServers, to: request.responseAddress }, 'address request');
    this.respond(request.responseAddress, encodeKeyAddressResponse(response));
  }

  // ---- storage --------------------------------------------------------------------------

  private onStorage(frame: Buffer): void {
    const request = decodeKeyRequest(frame);
    if (request === undefined) {
      this.counters.invalidFrames++;
      this.log.warn({ bytes: frame.length }, 'undecodable KeyRequest dropped');
      return;
    }
    this.counters.keyRequests++;
    if (this.drop()) {
      this.log.debug({ id: request.requestId }, 'fault: key request dropped');
      return;
    }
    const tuples = request.tuples.map((t) => this.handleTuple(request, t));
    if (tuples.length === 0) return; // Anna answers only when there is a tuple
    this.respond(
      request.responseAddress,
      encodeKeyResponse({ type: request.type, tuples, responseId: request.requestId }),
    );
  }

  private handleTuple(request: KeyRequest, tuple: KeyTuple): KeyTupleInit {
    const key = tuple.key;
    if (this.faults.wrongThreadOnce && !this.wrongThreadDone.has(key)) {
      this.wrongThreadDone.add(key);
      this.log.debug({ key }, 'fault: WRONG_THREAD');
      return { key, latticeType: tuple.latticeType, error: AnnaErrorType.WRONG_THREAD };
    }
    // Anna's storage thread: a client whose cached address count for the key is not the number
    // of threads that own it has a stale view (here one thread owns every key).
    const stale = tuple.addressCacheSize !== 0 && tuple.addressCacheSize !== 1;
    const answer =
      request.type === RequestType.GET
        ? this.get(key)
        : request.type === RequestType.PUT
          ? this.put(key, tuple)
          : this.unknownType(key, request.type);
    if (stale) this.counters.invalidations++;
    return stale ? { ...answer, invalidate: true } : answer;
  }

  private unknownType(key: string, type: number): KeyTupleInit {
    this.log.error({ key, type: requestTypeName(type) }, 'unknown request type');
    return { key };
  }

  private get(key: string): KeyTupleInit {
    const stored = this.store.get(key);
    if (stored === undefined) return { key, error: AnnaErrorType.KEY_DNE };
    if (stored.type === LatticeType.LWW) {
      const payload = encodeLwwValue({ timestamp: stored.timestamp, value: stored.value });
      const error = stored.value.length === 0 ? AnnaErrorType.KEY_DNE : AnnaErrorType.NO_ERROR;
      return { key, latticeType: stored.type, payload, error };
    }
    const values = [...stored.values.values()].sort(compareBytes);
    const error = values.length === 0 ? AnnaErrorType.KEY_DNE : AnnaErrorType.NO_ERROR;
    return { key, latticeType: stored.type, payload: encodeSetValue(values), error };
  }

  private put(key: string, tuple: KeyTuple): KeyTupleInit {
    const type = tuple.latticeType;
    if (type === LatticeType.NONE) {
      this.log.error({ key }, 'PUT request missing lattice type');
      return { key };
    }
    const stored = this.store.get(key);
    if (stored !== undefined && stored.type !== type) {
      this.log.error(
        { key, query: latticeTypeName(type), stored: latticeTypeName(stored.type) },
        `lattice type mismatch for key ${key}: query is ${latticeTypeName(type)} but we expect ${latticeTypeName(stored.type)}`,
      );
      return { key };
    }
    if (type === LatticeType.LWW) {
      const lww = decodeLwwValue(tuple.payload);
      if (lww === undefined) return this.badPayload(key, type);
      if (stored === undefined || (stored.type === LatticeType.LWW && lww.timestamp >= stored.timestamp)) {
        this.store.set(key, { type, timestamp: lww.timestamp, value: lww.value });
      }
      return { key, latticeType: type };
    }
    if (type === LatticeType.SET || type === LatticeType.ORDERED_SET) {
      const values = decodeSetValue(tuple.payload);
      if (values === undefined) return this.badPayload(key, type);
      let entry = stored;
      if (entry === undefined) {
        entry = { type, values: new Map() };
        this.store.set(key, entry);
      }
      if (entry.type !== LatticeType.LWW) {
        for (const v of values) entry.values.set(bytesKey(v), v);
      }
      return { key, latticeType: type };
    }
    this.log.error({ key, lattice: latticeTypeName(type) }, 'lattice type not supported by anna-local');
    return { key, latticeType: type, error: AnnaErrorType.LATTICE };
  }

  private badPayload(key: string, type: number): KeyTupleInit {
    this.log.warn({ key, lattice: latticeTypeName(type) }, 'undecodable lattice payload');
    return { key, latticeType: type, error: AnnaErrorType.LATTICE };
  }
}

/** Starts routing and storage; resolves once both sockets listen. */
export async function startLocalAnna(options: LocalAnnaOptions = {}): Promise<LocalAnna> {
  const host = options.host ?? '127.0.0.1';
  const publicHost = options.publicHost ?? (isWildcardHost(host) ? '127.0.0.1' : host);
  const routingPort = checkPort('routingPort', options.routingPort ?? 6450);
  const storagePort = checkPort('storagePort', options.storagePort ?? 6200);
  const log = options.logger ?? silentLogger;
  const routing = await bindOrExplain('routing (key-address) requests', host, routingPort);
  let storage: { socket: zmq.Pull; endpoint: string };
  try {
    storage = await bindOrExplain('storage (key) requests', host, storagePort);
  } catch (err) {
    routing.socket.close();
    throw err;
  }
  const server = new LocalAnnaServer(routing, storage, publicHost, log, options.faults ?? {});
  log.info(
    { routing: server.routingEndpoint, storage: server.storageEndpoint, faults: options.faults },
    'anna-local listening',
  );
  return server;
}
