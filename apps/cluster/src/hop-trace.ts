/**
 * The analysis behind `pnpm trace:hops`: the trace lines every process logs with TRACE_SAMPLE
 * (packages/runtime/src/trace.ts) joined into one chain of timestamps per command, and the time
 * between consecutive ones per hop.
 *
 * The join: a command is `requestId@clientId` up to the batch (client send, batcher receive and
 * send); the unbatcher's reply names the command and its slot, and the slot leads through the
 * rest. Inside a process, a send's `rx` is the receive that caused it, so the leader's phase-2a
 * leads back to the batch it received and the proxy leader's chosen to the vote that completed the
 * quorum; that vote leads to the acceptor that cast it, and its receive of the slot's phase-2a.
 */

export type HopKind = 'wire' | 'inside';

/** The hops of a command, in path order: each from one timestamp of the chain to the next. */
export const HOPS: readonly { readonly name: string; readonly kind: HopKind }[] = [
  { name: 'client → batcher', kind: 'wire' },
  { name: 'batcher', kind: 'inside' },
  { name: 'batcher → leader', kind: 'wire' },
  { name: 'leader', kind: 'inside' },
  { name: 'leader → proxy leader', kind: 'wire' },
  { name: 'proxy leader (phase 2a)', kind: 'inside' },
  { name: 'proxy leader → acceptor', kind: 'wire' },
  { name: 'acceptor', kind: 'inside' },
  { name: 'acceptor → proxy leader', kind: 'wire' },
  { name: 'proxy leader (vote → chosen)', kind: 'inside' },
  { name: 'proxy leader → unbatcher', kind: 'wire' },
  { name: 'unbatcher', kind: 'inside' },
  { name: 'unbatcher → client', kind: 'wire' },
];

/** A trace line as logged (pino's fields that matter here and the record's). */
export interface TraceLine {
  /** The process's role (RoleLabel) and instance name. */
  readonly role: string;
  readonly instance?: string;
  readonly pid: number;
  readonly hostname?: string;
  readonly hop: 'recv' | 'send';
  readonly type: string;
  /** Wall clock, µs. */
  readonly us: number;
  /** The host's monotonic clock, µs. */
  readonly mono?: number;
  readonly rx?: number;
  readonly cmd?: string;
  readonly cmds?: readonly string[];
  readonly slot?: number;
  readonly acceptor?: number;
  readonly value?: boolean;
}

/** The trace lines among a log's lines; anything else (other logs, a torn last line) is skipped. */
export function parseTraceLines(text: string): TraceLine[] {
  const lines: TraceLine[] = [];
  for (const raw of text.split('\n')) {
    if (!raw.includes('"msg":"trace"')) continue;
    try {
      const line = JSON.parse(raw) as TraceLine & { msg?: string };
      if (line.msg === 'trace' && typeof line.us === 'number' && typeof line.role === 'string')
        lines.push(line);
    } catch {
      // not JSON: skip
    }
  }
  return lines;
}

/** One command's 14 timestamps (µs), client send to client receive. */
export interface Chain {
  readonly cmd: string;
  readonly slot: number;
  readonly at: readonly number[];
}

export interface ChainResult {
  readonly chains: Chain[];
  /** Commands the client sent while traced whose chain misses a timestamp (cut by a traced second's end, or lost). */
  readonly incomplete: number;
}

const procOf = (l: TraceLine) => `${l.hostname ?? ''}/${l.pid}`;

/** Keeps the first value per key: a resend or a duplicate must not move a hop. */
function first<K, V>(map: Map<K, V>, key: K, value: V): void {
  if (!map.has(key)) map.set(key, value);
}

/**
 * Which clock to put the lines on: `mono` (the host's monotonic clock, shared by every process
 * on it) when they all come from one host, else `us` (wall clock). A process's `us` is its
 * start-up reading of the wall clock plus monotonic time since, so a clock step between two
 * processes' starts shifts one against the other by as much, which the monotonic clock cannot.
 */
export function traceClock(lines: readonly TraceLine[]): 'mono' | 'us' {
  const hosts = new Set(lines.map((l) => l.hostname ?? ''));
  return hosts.size <= 1 && lines.every((l) => typeof l.mono === 'number') ? 'mono' : 'us';
}

/** Joins the lines of every process into chains, in the order the client sent the commands. */
export function buildChains(lines: readonly TraceLine[]): ChainResult {
  const clock = traceClock(lines);
  const at = (l: TraceLine | undefined): number | undefined =>
    l === undefined ? undefined : clock === 'mono' ? l.mono : l.us;
  const clientSend = new Map<string, TraceLine>();
  const batcherRecv = new Map<string, TraceLine>();
  const batcherSend = new Map<string, TraceLine>();
  const replySend = new Map<string, TraceLine>();
  const clientRecv = new Map<string, TraceLine>();
  const leaderPhase2a = new Map<number, TraceLine>();
  const proxyPhase2aRecv = new Map<number, TraceLine>();
  /** The proxy leader's phase-2a sends, by slot and the receive they answer: the last one. */
  const proxyPhase2aSend = new Map<string, TraceLine>();
  const chosenSend = new Map<number, TraceLine>();
  const voteSend = new Map<string, TraceLine>();
  /** Each acceptor's receive of a slot's phase 2a, by process and slot. */
  const acceptorPhase2aRecv = new Map<string, TraceLine>();
  /** Every receive, by process and its `us`: what a send's `rx` points at. */
  const receives = new Map<string, Map<number, TraceLine>>();

  const sorted = [...lines].sort((a, b) => (at(a) as number) - (at(b) as number));
  for (const l of sorted) {
    if (l.hop === 'recv') {
      const proc = procOf(l);
      const byTime = receives.get(proc) ?? new Map<number, TraceLine>();
      receives.set(proc, byTime);
      byTime.set(l.us, l);
    }
    switch (`${l.role} ${l.hop} ${l.type}`) {
      case 'client send ClientRequest':
        if (l.cmd !== undefined) first(clientSend, l.cmd, l);
        break;
      case 'batcher recv ClientRequest':
        if (l.cmd !== undefined) first(batcherRecv, l.cmd, l);
        break;
      case 'batcher send ClientBatch':
        for (const cmd of l.cmds ?? []) first(batcherSend, cmd, l);
        break;
      case 'proposer send Phase2a':
        if (l.slot !== undefined) first(leaderPhase2a, l.slot, l);
        break;
      case 'proxy_leader recv Phase2a':
        if (l.slot !== undefined) first(proxyPhase2aRecv, l.slot, l);
        break;
      case 'proxy_leader send Phase2a':
        if (l.slot !== undefined && l.rx !== undefined) proxyPhase2aSend.set(`${l.slot}/${l.rx}`, l);
        break;
      case 'acceptor recv Phase2a':
        if (l.slot !== undefined) first(acceptorPhase2aRecv, `${procOf(l)}/${l.slot}`, l);
        break;
      case 'acceptor send Phase2b':
        if (l.slot !== undefined) first(voteSend, `${l.slot}/${l.acceptor}`, l);
        break;
      case 'proxy_leader send Chosen':
        if (l.slot !== undefined && l.value === true) first(chosenSend, l.slot, l);
        break;
      case 'unbatcher send ClientReply':
        if (l.cmd !== undefined) first(replySend, l.cmd, l);
        break;
      case 'client recv ClientReply':
        if (l.cmd !== undefined) first(clientRecv, l.cmd, l);
        break;
    }
  }

  const cause = (l: TraceLine | undefined) =>
    l?.rx === undefined ? undefined : receives.get(procOf(l))?.get(l.rx);
  const chains: Chain[] = [];
  let incomplete = 0;
  for (const [cmd, sent] of clientSend) {
    const reply = replySend.get(cmd);
    const slot = reply?.slot;
    const leader = slot === undefined ? undefined : leaderPhase2a.get(slot);
    const proxyRecv = slot === undefined ? undefined : proxyPhase2aRecv.get(slot);
    const chosen = slot === undefined ? undefined : chosenSend.get(slot);
    const decidingVote = cause(chosen);
    const vote = slot === undefined ? undefined : voteSend.get(`${slot}/${decidingVote?.acceptor}`);
    const times = [
      sent,
      batcherRecv.get(cmd),
      batcherSend.get(cmd),
      cause(leader),
      leader,
      proxyRecv,
      proxyRecv === undefined ? undefined : proxyPhase2aSend.get(`${slot}/${proxyRecv.us}`),
      // By slot, not by `rx`: an acceptor that answers a burst's votes once its log is synced
      // sends them after the receive that brought them.
      vote === undefined ? undefined : acceptorPhase2aRecv.get(`${procOf(vote)}/${slot}`),
      vote,
      decidingVote,
      chosen,
      cause(reply),
      reply,
      clientRecv.get(cmd),
    ].map(at);
    if (slot === undefined || times.some((t) => t === undefined)) {
      incomplete++;
      continue;
    }
    chains.push({ cmd, slot, at: times as number[] });
  }
  return { chains, incomplete };
}

export interface HopStats {
  readonly name: string;
  readonly kind: HopKind | 'total';
  readonly medianUs: number;
  readonly meanUs: number;
  readonly p90Us: number;
  /** Of the mean total: the means add up, the medians need not. */
  readonly share: number;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

/** Median, mean and p90 of each hop over `chains`, then the whole path and the sums by kind. */
export function hopStats(chains: readonly Chain[]): HopStats[] {
  const stats = (name: string, kind: HopStats['kind'], values: number[], total: number): HopStats => {
    const sorted = values.sort((a, b) => a - b);
    const mean = sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length);
    return {
      name,
      kind,
      medianUs: quantile(sorted, 0.5),
      meanUs: mean,
      p90Us: quantile(sorted, 0.9),
      share: total > 0 ? mean / total : Number.NaN,
    };
  };
  const totals = chains.map((c) => (c.at[c.at.length - 1] as number) - (c.at[0] as number));
  const meanTotal = totals.reduce((a, b) => a + b, 0) / Math.max(1, totals.length);
  const rows = HOPS.map((hop, i) =>
    stats(
      hop.name,
      hop.kind,
      chains.map((c) => (c.at[i + 1] as number) - (c.at[i] as number)),
      meanTotal,
    ),
  );
  const byKind = (kind: HopKind) =>
    chains.map((c) =>
      HOPS.reduce(
        (sum, hop, i) => (hop.kind === kind ? sum + (c.at[i + 1] as number) - (c.at[i] as number) : sum),
        0,
      ),
    );
  return [
    ...rows,
    stats('all wire hops', 'wire', byKind('wire'), meanTotal),
    stats('all inside a process', 'inside', byKind('inside'), meanTotal),
    stats('client send → client receive', 'total', totals, meanTotal),
  ];
}
