import { describe, expect, it } from 'vitest';
import { capacitySpec, renderSvg, scaleSpec, sweepSpec } from '../src/charts.ts';

const report = {
  date: '2026-11-24T00:00:00.000Z',
  batchSize: 40,
  machine: { cpus: 2, node: 'v20' },
  rawZmq: { messagesPerSecond: 70_000 },
  results: [
    { role: 'batcher', messagesPerSecond: 50_000, commandsPerSecond: 50_000 },
    { role: 'acceptor', messagesPerSecond: 9_000, commandsPerSecond: 360_000 },
  ],
  sweep: [
    { role: 'batcher', batchSize: 1, commandsPerSecond: 10_000, p99Ms: 3 },
    { role: 'batcher', batchSize: 40, commandsPerSecond: 50_000, p99Ms: 9 },
  ],
};

describe('charts', () => {
  it('render capacity against the raw ZeroMQ line, and the batch-size sweep, as SVG', async () => {
    const capacity = await renderSvg(capacitySpec(report));
    expect(capacity).toMatch(/^<svg/);
    expect(capacity).toContain('raw ZeroMQ 70,000/s');
    expect(capacity).toContain('batcher');
    expect(capacity).toContain('acceptor');
    const sweep = await renderSvg(sweepSpec(report));
    expect(sweep).toContain('BATCH_SIZE');
    expect(sweep).toContain('p99 ms');
  });

  it('render throughput against instances, one line per scaled role', async () => {
    const svg = await renderSvg(
      scaleSpec({
        date: '2026-11-27T00:00:00.000Z',
        machine: { cpus: 2 },
        clients: 128,
        clientProcs: 2,
        base: { batchers: 2, proxyLeaders: 2, unbatchers: 2, groups: 2 },
        results: [
          {
            role: 'proxy-leaders',
            instances: 1,
            commandsPerSecond: 9_000,
            p99Ms: 20,
            bottleneck: 'proxy-leader',
          },
          {
            role: 'proxy-leaders',
            instances: 2,
            commandsPerSecond: 12_000,
            p99Ms: 15,
            bottleneck: 'acceptor',
          },
          { role: 'groups', instances: 1, commandsPerSecond: 8_000, p99Ms: 25, bottleneck: 'acceptor' },
          {
            role: 'groups',
            instances: 2,
            commandsPerSecond: 11_000,
            p99Ms: 18,
            bottleneck: 'load generator',
          },
        ],
      }),
    );
    expect(svg).toMatch(/^<svg/);
    expect(svg).toContain('proxy-leaders');
    expect(svg).toContain('groups');
    expect(svg).toContain('commands/s');
    expect(svg).toContain('128 closed-loop clients in 2 processes');
  });
});
