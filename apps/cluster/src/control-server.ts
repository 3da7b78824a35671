/**
 * The cluster manager's control endpoint on loopback: `cluster scale` and `cluster status` reach a
 * running manager through it. Its URL is in the cluster's state file.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { STATELESS_ROLES, type StatelessRole } from '@paxos/launcher';
import { statusPageHandler } from '@paxos/status-page';
import { z } from 'zod';
import type { LocalCluster } from './cluster.ts';
import {
  readLocalConfiguration,
  readLocalMatchmakers,
  reconfigureLocal,
  servedVersion,
} from './reconfigure.ts';
import { localStatusSource } from './status-source.ts';

const scaleRequest = z.object({
  role: z.enum(STATELESS_ROLES as [StatelessRole, ...StatelessRole[]]),
  count: z.number().int().min(1),
});

const reconfigureRequest = z.union([
  z.object({ groups: z.number().int().min(1) }).strict(),
  z.object({ replace: z.string().min(1) }).strict(),
]);

export interface ControlServer {
  readonly url: string;
  /** The live status page (`GET /`; its data at `GET /api/status`). */
  readonly statusPageUrl: string;
  close(): Promise<void>;
}

/** What serves the autoscaler's metrics, when one runs. */
type MetricsSource = { metricsText(): Promise<string>; readonly contentType: string };

/**
 * `GET /status` → each process with its phase; `POST /scale {role, count}` → the processes added
 * and removed; `POST /reconfigure {groups} | {replace}` → the target configuration once served,
 * with the acceptors started and retired and how long it took; `GET /metrics` → the autoscaler's
 * metrics while one runs; `GET /` → the status page (@paxos/status-page), `GET /api/status` its data.
 */
export async function serveControl(
  cluster: LocalCluster,
  autoscalerMetrics: () => MetricsSource | null = () => null,
  host = '127.0.0.1',
  port = 0,
): Promise<ControlServer> {
  const statusPage = statusPageHandler(localStatusSource(cluster, `local cluster (${cluster.workDir})`));
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (await statusPage(req, res)) return;
    const metrics = autoscalerMetrics();
    if (req.method === 'GET' && path === '/metrics' && metrics !== null) {
      res.writeHead(200, { 'Content-Type': metrics.contentType });
      res.end(await metrics.metricsText());
      return;
    }
    if (req.method === 'GET' && path === '/status') {
      return json(res, 200, {
        leader: await cluster.leader(),
        processes: await cluster.phases(),
        configuration: await readLocalConfiguration(cluster).catch(() => null),
        matchmakers: await readLocalMatchmakers(cluster).catch(() => null),
        // Behind the target while the leader moves to it.
        servedVersion: await servedVersion(cluster).catch(() => null),
      });
    }
    if (req.method === 'POST' && path === '/scale') {
      const parsed = scaleRequest.safeParse(await body(req).catch(() => null));
      if (!parsed.success) {
        return json(res, 400, {
          error: `expected {"role": one of ${STATELESS_ROLES.join(', ')}, "count": an integer >= 1}`,
        });
      }
      try {
        const { added, removed, exited } = await cluster.scale(parsed.data.role, parsed.data.count);
        await exited;
        return json(res, 200, { added, removed });
      } catch (err) {
        return json(res, 409, { error: (err as Error).message });
      }
    }
    if (req.method === 'POST' && path === '/reconfigure') {
      const parsed = reconfigureRequest.safeParse(await body(req).catch(() => null));
      if (!parsed.success)
        return json(res, 400, {
          error: 'expected {"groups": an integer >= 1} or {"replace": an acceptor or matchmaker name}',
        });
      try {
        return json(res, 200, await reconfigureLocal(cluster, parsed.data));
      } catch (err) {
        return json(res, 409, { error: (err as Error).message });
      }
    }
    json(res, 404, {
      error: 'expected GET /status, POST /scale, POST /reconfigure, or GET / (the status page)',
    });
  };
  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${bound}`,
    statusPageUrl: `http://${host}:${bound}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function json(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(`${JSON.stringify(value)}\n`);
}

async function body(req: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const chunk of req) {
    text += chunk;
    if (text.length > 10_000) throw new Error('request too large');
  }
  return JSON.parse(text);
}
