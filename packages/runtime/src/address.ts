import type { Address, MessageType } from '@paxos/core';
import { assertEndpoint as assertTransportEndpoint, parseEndpoint } from '@paxos/transport-zmq';

/**
 * A process's address lists the endpoints of its receiving sockets in the order of the design's
 * port table, joined by commas, optionally followed by `#tag` when several logical clients share
 * one reply socket:
 *
 *   proposer      tcp://h:11000,tcp://h:11100,tcp://h:11200   batches, replies (phase-1b/chosen/nack), elections
 *   proxy leader  tcp://h:12100,tcp://h:12200                 phase-2a from leaders, phase-2b/nack from acceptors
 *   acceptor      tcp://h:12000
 *   batcher       tcp://h:13000                               client commands and leader info
 *   unbatcher     tcp://h:14000
 *   client        tcp://h:10000#c7                            replies
 *
 * The address travels as the envelope's `from`, so a receiver can answer without a directory
 * lookup; the message type picks which of the endpoints gets it.
 */
const SOCKET_FOR_MESSAGE: Record<MessageType, number> = {
  ClientRequest: 0,
  LeaderInfo: 0,
  ClientBatch: 0,
  Phase1a: 0,
  Phase2a: 0,
  ClientReply: 0,
  Phase1b: 1,
  Phase2b: 1,
  Chosen: 1,
  Nack: 1,
  Heartbeat: 2,
  // Matchmakers (issue 16) and their reconfiguration: requests to a matchmaker's one socket,
  // replies to the proposer's replies socket.
  MatchA: 0,
  GarbageA: 0,
  StopA: 0,
  BootstrapA: 0,
  EpochAccept: 0,
  EpochChosen: 0,
  MatchB: 1,
  MatchNack: 1,
  GarbageB: 1,
  StopB: 1,
  BootstrapB: 1,
  EpochAccepted: 1,
  EpochNack: 1,
  Stopped: 1,
  // Acceptors' durable watermark and retirement (issue 16): requests to the acceptor's one
  // socket, replies to the proposer's replies socket.
  WatermarkA: 0,
  Retire: 0,
  WatermarkB: 1,
  RetireB: 1,
};

export interface ParsedAddress {
  readonly endpoints: readonly string[];
  readonly tag: string | null;
}

const cache = new Map<Address, ParsedAddress>();
const CACHE_LIMIT = 100_000;

export function formatAddress(endpoints: readonly string[], tag?: string): Address {
  for (const endpoint of endpoints) assertEndpoint(endpoint);
  return tag === undefined ? endpoints.join(',') : `${endpoints.join(',')}#${tag}`;
}

/** Throws an Error naming the bad address when it is not a list of tcp://host:port endpoints. */
export function parseAddress(address: Address): ParsedAddress {
  const cached = cache.get(address);
  if (cached !== undefined) return cached;
  const hash = address.indexOf('#');
  const list = hash === -1 ? address : address.slice(0, hash);
  const endpoints = list.split(',');
  for (const endpoint of endpoints) {
    if (!parseEndpoint(endpoint, 'connect').ok) {
      throw new Error(`bad address "${address}": expected tcp://host:port endpoints separated by commas`);
    }
  }
  const parsed: ParsedAddress = { endpoints, tag: hash === -1 ? null : address.slice(hash + 1) };
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(address, parsed);
  return parsed;
}

/** The endpoint of `address` that receives messages of `type`. */
export function endpointFor(address: Address, type: MessageType): string {
  const { endpoints } = parseAddress(address);
  return endpoints[Math.min(SOCKET_FOR_MESSAGE[type], endpoints.length - 1)] as string;
}

/** Throws an Error naming the value unless it is a full tcp://host:port endpoint. */
export function assertEndpoint(endpoint: string): void {
  assertTransportEndpoint(endpoint, 'connect');
}

/** An endpoint to bind (port 0 = any free port). */
export function endpoint(host: string, port: number): string {
  const e = `tcp://${host}:${port}`;
  assertTransportEndpoint(e, 'bind');
  return e;
}
