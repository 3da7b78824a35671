import { afterEach, describe, expect, it } from 'vitest';
import {
  histogramQuantile,
  RateWindow,
  type StatusPageServer,
  type StatusSnapshot,
  serveStatusPage,
  staticDir,
} from '../src/index.ts';

const SNAPSHOT: StatusSnapshot = {
  at: 1_700_000_000_000,
  title: 'test cluster',
  leader: { name: 'proposer-1', ballot: { round: 3, proposerId: 7 } },
  processes: [{ name: 'batcher-0', role: 'batcher', phase: 'ready', pid: 42, restarts: 0 }],
  acceptorGroups: { version: 0, servedVersion: 0, groups: [{ id: 0, acceptors: ['acceptor-g0-a0'] }] },
  matchmakers: { epoch: 0, names: ['matchmaker-0'] },
  commandsPerS: 100,
  p50Ms: 1.5,
  p99Ms: 4,
  chosenWatermark: 12,
  decisions: [{ at: '2024-01-01T00:00:00.000Z', text: 'batcher 1 → 2: load' }],
  problems: [],
};

describe('serveStatusPage', () => {
  let server: StatusPageServer | null = null;
  afterEach(async () => {
    await server?.close();
    server = null;
  });

  it('serves the page, its script and stylesheet, and the source as JSON', async () => {
    server = await serveStatusPage(async () => SNAPSHOT);
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await fetch(server.url);
    expect(page.headers.get('content-type')).toContain('text/html');
    const html = await page.text();
    expect(html).toContain('<script type="module" src="app.js">');
    expect(html).toContain('id="leader"');
    const script = await fetch(new URL('app.js', server.url));
    expect(script.headers.get('content-type')).toContain('text/javascript');
    expect(await script.text()).toContain("fetch('api/status'");
    expect((await fetch(new URL('style.css', server.url))).status).toBe(200);
    const api = await fetch(new URL('api/status', server.url));
    expect(api.headers.get('content-type')).toBe('application/json');
    expect(await api.json()).toEqual(SNAPSHOT);
  });

  it('answers 503 with the error when the source throws, 404 elsewhere', async () => {
    server = await serveStatusPage(async () => {
      throw new Error('no cluster');
    });
    const api = await fetch(new URL('api/status', server.url));
    expect(api.status).toBe(503);
    expect(await api.json()).toEqual({ error: 'no cluster' });
    expect((await fetch(new URL('../package.json', `${server.url}x/`))).status).toBe(404);
    expect((await fetch(new URL('nothing', server.url))).status).toBe(404);
  });

  it('finds its static files through the package name', () => {
    expect(staticDir()).toMatch(/status-page\/static$/);
  });
});

describe('histogramQuantile', () => {
  const inf = Number.POSITIVE_INFINITY;
  it('interpolates inside the bucket, from 0 for the lowest', () => {
    const buckets = [
      { le: 1, count: 50 },
      { le: 2, count: 100 },
      { le: inf, count: 100 },
    ];
    expect(histogramQuantile(0.25, buckets)).toBeCloseTo(0.5);
    expect(histogramQuantile(0.5, buckets)).toBeCloseTo(1);
    expect(histogramQuantile(0.99, buckets)).toBeCloseTo(1.98);
  });
  it('gives the highest finite bound in +Inf, null when empty', () => {
    expect(
      histogramQuantile(0.99, [
        { le: 5, count: 1 },
        { le: inf, count: 10 },
      ]),
    ).toBe(5);
    expect(
      histogramQuantile(0.5, [
        { le: 5, count: 0 },
        { le: inf, count: 0 },
      ]),
    ).toBeNull();
  });
});

describe('RateWindow', () => {
  const inf = Number.POSITIVE_INFINITY;
  const sample = (at: number, commands: Record<string, number>, latency: Record<string, number[]> = {}) => ({
    at,
    commands: new Map(Object.entries(commands)),
    latency: new Map(
      Object.entries(latency).map(([k, [a, b]]) => [
        k,
        [
          { le: 1, count: a as number },
          { le: inf, count: b as number },
        ],
      ]),
    ),
  });

  it('has no rate from one sample, then the increase over the window per second', () => {
    const w = new RateWindow(5000);
    expect(w.push(sample(0, { u0: 100 })).commandsPerS).toBeNull();
    expect(w.push(sample(1000, { u0: 300 })).commandsPerS).toBe(200);
    expect(w.push(sample(2000, { u0: 500, u1: 100 })).commandsPerS).toBe(250);
  });

  it('counts a counter that went down (a restart) from 0, and forgets samples older than the window', () => {
    const w = new RateWindow(2000);
    w.push(sample(0, { u0: 1000 }));
    expect(w.push(sample(1000, { u0: 50 })).commandsPerS).toBe(50);
    w.push(sample(2000, { u0: 150 }));
    // The window now starts at 1000 (u0 = 50): 250 more in 2 s.
    expect(w.push(sample(3000, { u0: 550 })).commandsPerS).toBe(250);
  });

  it('takes percentiles of the latencies observed in the window only, over every series', () => {
    const w = new RateWindow(5000);
    w.push(sample(0, {}, { c0: [1000, 1000] }));
    // Since then: c0 100 more, all above 1 ms; c1 (new) 100 at or below 1 ms.
    const r = w.push(sample(1000, {}, { c0: [1000, 1100], c1: [100, 100] }));
    expect(r.p50Ms).toBeCloseTo(1);
    expect(r.p99Ms).toBe(1);
  });
});
