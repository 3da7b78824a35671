import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildChains, HOPS, parseTraceLines, traceClock } from '../src/hop-trace.ts';
import { startCluster } from './helpers.ts';

let env: Awaited<ReturnType<typeof startCluster>>;
const clientTrace = process.env.TRACE_SAMPLE;
beforeAll(async () => {
  // The load generator inherits this process's environment; the roles get it from the topology.
  process.env.TRACE_SAMPLE = '1';
  env = await startCluster(29400, { logLevel: 'info', extraEnv: { TRACE_SAMPLE: '1' } });
});
afterAll(async () => {
  await env?.stop();
  if (clientTrace === undefined) delete process.env.TRACE_SAMPLE;
  else process.env.TRACE_SAMPLE = clientTrace;
});

describe('TRACE_SAMPLE=1', () => {
  it('every process logs its hops, and each command joins into one chain of 14 ordered timestamps', async () => {
    const summary = await env.cluster.runClient({ clients: 2, commands: 300 });
    expect(summary.acknowledged).toBe(300);
    await env.cluster.down(); // each process writes what it still holds of its trace as it stops
    const dir = path.join(env.workDir, 'logs');
    const lines = readdirSync(dir).flatMap((f) => parseTraceLines(readFileSync(path.join(dir, f), 'utf8')));
    expect(new Set(lines.map((l) => l.role))).toEqual(
      new Set(['client', 'batcher', 'proposer', 'proxy_leader', 'acceptor', 'unbatcher']),
    );
    expect(traceClock(lines)).toBe('mono');
    const { chains } = buildChains(lines);
    // A command sent again (after a resend) may lack a hop; nearly all are whole.
    expect(chains.length).toBeGreaterThanOrEqual(290);
    for (const chain of chains) {
      expect(chain.at).toHaveLength(HOPS.length + 1);
      for (let i = 1; i < chain.at.length; i++) {
        expect(chain.at[i] as number).toBeGreaterThanOrEqual(chain.at[i - 1] as number);
      }
    }
  });
});
