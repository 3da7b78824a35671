import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { findSample, Metrics, type MetricsServer, parseExposition, serveMetrics } from '../src/index.ts';

const open: MetricsServer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

async function start(metrics: Metrics, port = 0): Promise<MetricsServer> {
  const server = await serveMetrics(metrics, { port });
  open.push(server);
  return server;
}

function raw(port: number, method: string, path: string) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>(
    (resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end();
    },
  );
}

describe('serveMetrics', () => {
  it('serves /metrics over HTTP with the seed names, labels and values', async () => {
    const metrics = new Metrics({ role: 'acceptor', instance: 'acc-0-1' });
    metrics.incoming(12);
    metrics.outgoing(11);
    metrics.processed(12);
    metrics.apply({ name: 'p1a', op: 'inc', value: 2 });
    metrics.apply({ name: 'p1b_success', op: 'inc', value: 1 });
    metrics.apply({ name: 'p1b_preempted', op: 'inc', value: 1 });
    metrics.apply({ name: 'p2b_preempted', op: 'inc', value: 3 });
    metrics.apply({ name: 'leader_heartbeat_received', op: 'inc', value: 4 });
    metrics.mockSent(5);
    metrics.mockReceived(6);
    metrics.apply({ name: 'phase2_latency_ms', op: 'observe', value: 2 });

    const server = await start(metrics);
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/metrics`);

    const res = await fetch(server.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const parsed = parseExposition(await res.text());

    const labels = { role: 'acceptor', instance: 'acc-0-1' };
    const expected: Record<string, number> = {
      num_incoming_messages: 12,
      num_outgoing_messages: 11,
      num_processed_messages: 12,
      p1a: 2,
      p1b_success: 1,
      p1b_preempted: 1,
      p2b_preempted: 3,
      leader_heartbeat_received: 4,
      num_sent_mock_messages: 5,
      num_received_mock_messages: 6,
      phase2_latency_seconds_count: 1,
      phase2_latency_seconds_sum: 0.002,
    };
    for (const [name, v] of Object.entries(expected)) {
      const samples = parsed.get(name);
      expect(samples, name).toHaveLength(1);
      expect(samples?.[0]?.labels, name).toEqual(labels);
      expect(samples?.[0]?.value, name).toBe(v);
    }
    expect(findSample(parsed, 'phase2_latency_seconds_bucket', { ...labels, le: '0.0025' })).toBe(1);
    expect(findSample(parsed, 'process_resident_memory_bytes', labels)).toBeGreaterThan(0);
  });

  it('reflects updates between scrapes', async () => {
    const metrics = new Metrics({ role: 'proposer', instance: 'p-0', collectDefaultMetrics: false });
    const server = await start(metrics);
    const scrape = async () => parseExposition(await (await fetch(server.url)).text());
    expect(findSample(await scrape(), 'is_leader')).toBe(0);
    metrics.setLeader(true);
    metrics.apply({ name: 'slots_chosen', op: 'inc', value: 9 });
    const after = await scrape();
    expect(findSample(after, 'is_leader')).toBe(1);
    expect(findSample(after, 'slots_chosen')).toBe(9);
  });

  it('answers / with a short text, other paths with 404 and other methods with 405', async () => {
    const metrics = new Metrics({ role: 'batcher', instance: 'b-0', collectDefaultMetrics: false });
    const { port } = await start(metrics);

    const index = await raw(port, 'GET', '/');
    expect(index.status).toBe(200);
    expect(index.body).toMatch(/\/metrics/);
    expect(index.body.length).toBeLessThan(200);

    expect((await raw(port, 'GET', '/metrics?x=1')).status).toBe(200);
    expect((await raw(port, 'GET', '/nope')).status).toBe(404);
    expect((await raw(port, 'GET', '/metrics/extra')).status).toBe(404);
    expect((await raw(port, 'GET', '/favicon.ico')).status).toBe(404);

    const post = await raw(port, 'POST', '/metrics');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');

    const head = await raw(port, 'HEAD', '/metrics');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });

  it('answers /healthz while it runs and /readyz by the readiness it is given', async () => {
    const metrics = new Metrics({ role: 'batcher', instance: 'b-1', collectDefaultMetrics: false });
    let phase = 'starting';
    const server = await serveMetrics(metrics, {
      port: 0,
      readiness: () => ({ ready: phase === 'ready', phase }),
    });
    open.push(server);
    const { port } = server;
    expect(await raw(port, 'GET', '/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    expect(await raw(port, 'GET', '/readyz')).toMatchObject({ status: 503, body: 'starting\n' });
    phase = 'ready';
    expect(await raw(port, 'GET', '/readyz')).toMatchObject({ status: 200, body: 'ready\n' });
    phase = 'draining';
    expect(await raw(port, 'GET', '/readyz')).toMatchObject({ status: 503, body: 'draining\n' });
    // Without a readiness function, a process that serves is ready.
    const plain = await start(new Metrics({ role: 'mock', instance: 'm-2', collectDefaultMetrics: false }));
    expect(await raw(plain.port, 'GET', '/readyz')).toMatchObject({ status: 200, body: 'ready\n' });
  });

  it('rejects with an error naming host:port when the port is in use', async () => {
    const metrics = new Metrics({ role: 'mock', instance: 'm-0', collectDefaultMetrics: false });
    const first = await start(metrics);
    await expect(serveMetrics(metrics, { port: first.port })).rejects.toThrow(
      new RegExp(`127\\.0\\.0\\.1:${first.port}.*in use`),
    );
    // The first server is unaffected.
    expect((await fetch(first.url)).status).toBe(200);
  });

  it('rejects an invalid port', async () => {
    const metrics = new Metrics({ role: 'mock', instance: 'm-1', collectDefaultMetrics: false });
    await expect(serveMetrics(metrics, { port: 70000 })).rejects.toThrow(/port/);
    await expect(serveMetrics(metrics, { port: -1 })).rejects.toThrow(/port/);
  });

  it('close() frees the port, closes kept-alive connections and is idempotent', async () => {
    const metrics = new Metrics({ role: 'directory', instance: 'd-0', collectDefaultMetrics: false });
    const server = await serveMetrics(metrics, { port: 0 });
    // fetch keeps the connection alive; close must not wait for it to time out.
    expect((await fetch(server.url)).status).toBe(200);
    const started = Date.now();
    await server.close();
    await server.close();
    expect(Date.now() - started).toBeLessThan(2000);
    const again = await start(metrics, server.port);
    expect(again.port).toBe(server.port);
  });
});
