/**
 * The live status page: `static/index.html` and `static/app.js` (plain ES module, no build step)
 * poll `GET /api/status` every second; this module serves both, given a `StatusSource` that
 * takes a `StatusSnapshot`. The local cluster serves it from its control server, `pnpm aws
 * dashboard` from Prometheus' HTTP API.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describeTimelineEntry, type TimelineEntry } from '@paxos/autoscaler';

export { histogramQuantile, type LatencyBucket, type RateSample, type Rates, RateWindow } from './rates.ts';

/** A process's phase as the page shows it. */
export type ProcessPhase = 'starting' | 'ready' | 'draining' | 'restarting' | 'stopped' | 'gone';

export interface ProcessView {
  readonly name: string;
  readonly role: string;
  readonly phase: ProcessPhase;
  readonly pid?: number | null;
  /** Times the supervisor brought it back (local clusters). */
  readonly restarts?: number | null;
  /** Where it runs (EC2: the instance id). */
  readonly where?: string | null;
}

/** One entry of the autoscaler's timeline: when (ISO time) and what, in words. */
export interface DecisionView {
  readonly at: string;
  readonly text: string;
}

/** Everything the page shows at one moment; a part nobody could read is null. */
export interface StatusSnapshot {
  /** When it was taken, ms since the epoch. */
  readonly at: number;
  /** What the page is about, e.g. "local cluster (/home/me/.cluster)". */
  readonly title: string;
  readonly leader: {
    readonly name: string;
    /** Its ballot (round, proposer id), where the proposer exports it. */
    readonly ballot: { readonly round: number; readonly proposerId: number | null } | null;
  } | null;
  readonly processes: readonly ProcessView[];
  /** The target configuration (acceptor groups) and the version the leader serves. */
  readonly acceptorGroups: {
    readonly version: number | null;
    readonly servedVersion: number | null;
    readonly groups: readonly { readonly id: number; readonly acceptors: readonly string[] }[];
  } | null;
  readonly matchmakers: { readonly epoch: number; readonly names: readonly string[] } | null;
  /** Client commands chosen per second, over the last few seconds. */
  readonly commandsPerS: number | null;
  /** Client latency percentiles over the last few seconds (the load generators' histograms). */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  /** Every slot below it is known chosen (the leader's `chosen_watermark`). */
  readonly chosenWatermark: number | null;
  /** The autoscaler's latest decisions, oldest first; empty when none runs. */
  readonly decisions: readonly DecisionView[];
  /** What could not be read this time, in words. */
  readonly problems: readonly string[];
}

export type StatusSource = () => Promise<StatusSnapshot>;

const STATIC_FILES: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

/**
 * The folder of index.html and app.js. Resolved through the package's own name, so it is found
 * from its TypeScript source and from an app's bundle (where import.meta.url is the bundle's).
 */
export function staticDir(): string {
  const require = createRequire(import.meta.url);
  return path.dirname(require.resolve('@paxos/status-page/static/index.html'));
}

/**
 * A request handler for the page: `GET /` (index.html), `/app.js`, `/style.css` and
 * `/api/status` (the source's snapshot as JSON; 503 with `{error}` when it throws). Resolves
 * false for any other request, which the caller answers; never rejects.
 */
export function statusPageHandler(
  source: StatusSource,
  dir: string = staticDir(),
): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  return async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const pathname = (req.url ?? '/').split('?', 1)[0] ?? '/';
    if (pathname === '/api/status') {
      let body: string;
      let status = 200;
      try {
        body = JSON.stringify(await source());
      } catch (err) {
        status = 503;
        body = JSON.stringify({ error: (err as Error).message });
      }
      res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end(`${body}\n`);
      return true;
    }
    const asset = STATIC_FILES[pathname];
    if (asset === undefined) return false;
    let content: Buffer;
    try {
      content = await readFile(path.join(dir, asset.file));
    } catch (err) {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(`cannot read ${asset.file}: ${(err as Error).message}\n`);
      return true;
    }
    res.writeHead(200, { 'Content-Type': asset.type, 'Cache-Control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : content);
    return true;
  };
}

export interface StatusPageServer {
  /** The page, e.g. http://127.0.0.1:8080/ */
  readonly url: string;
  close(): Promise<void>;
}

/** Serves the page on its own port (0: any free one); anything else answers 404. */
export async function serveStatusPage(
  source: StatusSource,
  options: { port?: number; host?: string; dir?: string } = {},
): Promise<StatusPageServer> {
  const host = options.host ?? '127.0.0.1';
  const handle = statusPageHandler(source, options.dir);
  const server = createServer((req, res) => {
    handle(req, res).then(
      (handled) => {
        if (!handled) {
          res.writeHead(404, { 'Content-Type': 'text/plain' });
          res.end('not found: the page is at /, its data at /api/status\n');
        }
      },
      (err: unknown) => {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(`${(err as Error).message}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The last `n` entries of an autoscaler timeline file (JSON lines, `--timeline` / the local
 * cluster's autoscaler-timeline.jsonl), in words; none when there is no file.
 */
export function readDecisions(file: string, n: number): DecisionView[] {
  if (!existsSync(file)) return [];
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n);
  return lines.flatMap((line) => {
    try {
      const entry = JSON.parse(line) as TimelineEntry;
      return [{ at: entry.at, text: describeTimelineEntry(entry) }];
    } catch {
      return [];
    }
  });
}
