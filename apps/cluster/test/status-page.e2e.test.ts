/**
 * The status page in a real headless browser (Debian's chromium, driven by playwright-core)
 * against a real local cluster under a little load: it shows the real leader, a killed process as
 * restarting and then ready, and the new leader after the leader is killed. With
 * UPDATE_SCREENSHOT=1 it writes docs/status-page.png; otherwise the screenshot goes to the
 * cluster's temporary directory (removed afterwards), so `pnpm test` leaves the tree clean.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlServer, serveControl } from '../src/control-server.ts';
import { startCluster, waitFor } from './helpers.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const REPO_ROOT = path.resolve(import.meta.dirname, '../../..');
const BASE_PORT = 22400;

let env: Awaited<ReturnType<typeof startCluster>> | undefined;
let control: ControlServer | undefined;
let browser: Browser | undefined;
let load: Promise<unknown> | undefined;

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`no browser at ${CHROMIUM}: run scripts/setup-system.sh (or set CHROMIUM_PATH)`);
  env = await startCluster(BASE_PORT, { metricsBasePort: BASE_PORT + 100 });
  control = await serveControl(env.cluster, () => null, '127.0.0.1', BASE_PORT + 190);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
});

afterAll(async () => {
  if (load !== undefined) {
    env?.cluster.stopClient(0);
    await load.catch(() => {});
  }
  await browser?.close();
  await control?.close();
  await env?.stop();
});

/** The page's text in element `selector`, or undefined while it has none. */
async function text(page: Page, selector: string): Promise<string | undefined> {
  const t = await page.locator(selector).first().textContent({ timeout: 1000 });
  return t === null || t === '' ? undefined : t;
}

/** Waits until the page shows `name` in `phase`; polls the page every 100 ms (it redraws every second). */
function phaseShown(page: Page, name: string, phase: string, timeoutMs: number): Promise<true> {
  return waitFor(
    `${name} shown ${phase}`,
    timeoutMs,
    async () =>
      (await page.locator(`tr[data-process="${name}"]`).getAttribute('data-phase', { timeout: 1000 })) ===
      phase
        ? true
        : undefined,
    100,
  );
}

describe('status page', () => {
  it('shows the leader, a killed process restarting then ready, and the new leader after the leader is killed', async () => {
    const cluster = (env as NonNullable<typeof env>).cluster;
    load = cluster.runClient({ index: 0, clients: 4, durationS: 600, targetRate: 200, reportMs: 1000 });
    const page = await (browser as Browser).newPage({ viewport: { width: 1280, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    // The chart's last minute: the test runs for less than that.
    await page.goto(`${(control as ControlServer).statusPageUrl}?minutes=1`);

    // 1. It loads and shows the real leader.
    const leader = await cluster.waitForLeader(20_000);
    await waitFor('the leader shown', 15_000, async () =>
      (await text(page, '#leader')) === leader ? true : undefined,
    );
    expect(await cluster.leader()).toBe(leader);
    expect(await text(page, 'tr.leader td')).toBe(leader);
    expect(await text(page, '#title')).toContain('local cluster');

    // 2. Every process of the cluster has a row; the acceptor groups and matchmakers are listed.
    const names = cluster.instances().map((i) => i.name);
    await waitFor('a row per process', 10_000, async () => {
      const rows = await Promise.all(
        (await page.locator('tr[data-process]').all()).map((row) => row.getAttribute('data-process')),
      );
      return names.every((n) => rows.includes(n)) ? true : undefined;
    });
    for (const name of names.filter((n) => n !== 'client-0')) await phaseShown(page, name, 'ready', 15_000);
    expect(await page.locator('#groups .group').count()).toBe(cluster.topology.groups);
    expect(await text(page, '#groups')).toContain('acceptor-g0-a0');
    expect(await text(page, '#matchmakers')).toContain('matchmaker-0');

    // 3. Live throughput and latency from the load generator, drawn on the chart; a watermark.
    await waitFor('commands/s and latency shown', 20_000, async () => {
      const rate = Number(await text(page, '#rate'));
      const p99 = Number(await text(page, '#p99'));
      return rate > 0 && p99 > 0 ? true : undefined;
    });
    expect(Number(await text(page, '#watermark'))).toBeGreaterThan(0);
    await waitFor('the throughput line drawn', 10_000, async () =>
      (await page.locator('#chart path.series-commandsPerS').count()) > 0 ? true : undefined,
    );

    // 4. A killed batcher is shown restarting, then ready again with one restart.
    cluster.kill('batcher-0');
    await phaseShown(page, 'batcher-0', 'restarting', 15_000);
    await phaseShown(page, 'batcher-0', 'ready', 30_000);
    expect(await text(page, 'tr[data-process="batcher-0"] td:nth-child(5)')).toBe('1');
    expect(await text(page, '#changes')).toContain('batcher-0: ready → restarting');

    // 5. The leader killed: the page shows the new leader (the other proposer, or the killed
    // one's new incarnation if it won the election).
    cluster.kill(leader);
    const restarted = () => (cluster.instances().find((i) => i.name === leader)?.restarts ?? 0) > 0;
    const newLeader = await waitFor('a new leader', 30_000, async () => {
      const now = await cluster.leader();
      return now !== null && (now !== leader || restarted()) ? now : undefined;
    });
    await waitFor(`the new leader ${newLeader} shown`, 15_000, async () =>
      (await text(page, '#leader')) === newLeader ? true : undefined,
    );
    expect(await text(page, '#changes')).toContain(`leader ${leader} →`);
    await phaseShown(page, leader, 'ready', 30_000);

    // 6. The screenshot, once everything is ready again.
    const shot =
      process.env.UPDATE_SCREENSHOT === '1'
        ? path.join(REPO_ROOT, 'docs', 'status-page.png')
        : path.join((env as NonNullable<typeof env>).workDir, 'status-page.png');
    await page.waitForTimeout(2000);
    await page.screenshot({ path: shot, fullPage: true });
    expect(existsSync(shot)).toBe(true);
    expect(errors).toEqual([]);
    console.log(`status page: ${newLeader} leads after ${leader} was killed; screenshot ${shot}`);
  });
});
