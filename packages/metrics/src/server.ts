import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from './metrics.ts';

/** What `serveMetrics` exposes: a role's {@link Metrics} or the directory's. */
export type MetricsSource = Pick<Metrics, 'metricsText' | 'contentType'>;

export interface ServeMetricsOptions {
  /** TCP port; 0 picks an ephemeral one. */
  port: number;
  /** Interface to bind. Default 127.0.0.1. */
  host?: string;
  /**
   * The process's readiness for `/readyz`: 200 with the phase when ready, 503 with it otherwise
   * (starting, draining). Without it `/readyz` answers as `/healthz` does.
   */
  readiness?: () => { ready: boolean; phase: string };
}

export interface MetricsServer {
  /** The bound port (the real one when 0 was asked). */
  readonly port: number;
  /** The full address of the metrics endpoint, e.g. `http://127.0.0.1:16000/metrics`. */
  readonly url: string;
  /** Stops listening and closes open connections. Idempotent. */
  close(): Promise<void>;
}

const INDEX_TEXT =
  'Autoscaling Paxos metrics exporter. Metrics are at /metrics, liveness at /healthz, readiness at /readyz.\n';
const PATHS = new Set(['/', '/metrics', '/healthz', '/readyz']);

function hostForUrl(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/**
 * Serves `metrics` over HTTP: `GET /metrics` → the exposition text with the registry's content type,
 * `/healthz` → 200 while the process runs, `/readyz` → 200 once it serves (see `readiness`), 503
 * before and while it drains; `GET /` → a short text, other paths → 404, other methods → 405.
 */
export function serveMetrics(metrics: MetricsSource, options: ServeMetricsOptions): Promise<MetricsServer> {
  const host = options.host ?? '127.0.0.1';
  const { port } = options;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    return Promise.reject(new Error(`serveMetrics: port must be an integer in 0..65535, got ${port}`));
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (!PATHS.has(path ?? '')) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('Not found. Metrics are at /metrics.\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'Content-Type': 'text/plain; charset=utf-8', Allow: 'GET, HEAD' });
      res.end('Method not allowed.\n');
      return;
    }
    if (path === '/' || path === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(req.method === 'HEAD' ? undefined : path === '/' ? INDEX_TEXT : 'ok\n');
      return;
    }
    if (path === '/readyz') {
      const { ready, phase } = options.readiness?.() ?? { ready: true, phase: 'ready' };
      res.writeHead(ready ? 200 : 503, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(req.method === 'HEAD' ? undefined : `${phase}\n`);
      return;
    }
    try {
      const body = await metrics.metricsText();
      res.writeHead(200, { 'Content-Type': metrics.contentType });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (err) {
      res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(`Could not collect metrics: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  };

  const server = createServer((req, res) => {
    void handle(req, res);
  });

  return new Promise<MetricsServer>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.close();
      const where = `${hostForUrl(host)}:${port}`;
      if (err.code === 'EADDRINUSE') {
        reject(new Error(`metrics server: address ${where} is already in use`, { cause: err }));
      } else {
        reject(new Error(`metrics server: cannot listen on ${where}: ${err.message}`, { cause: err }));
      }
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      // A later server error (rare: e.g. EMFILE on accept) must not crash the role it reports on.
      server.on('error', () => {});
      const bound = (server.address() as AddressInfo).port;
      let closing: Promise<void> | undefined;
      resolve({
        port: bound,
        url: `http://${hostForUrl(host)}:${bound}/metrics`,
        close: () => {
          closing ??= new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          });
          return closing;
        },
      });
    });
  });
}
