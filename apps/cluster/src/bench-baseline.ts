import { measureRawZmq } from '@paxos/transport-zmq';
import { BENCH_SHORT } from '../../../scripts/bench-report.ts';

/**
 * Raw ZeroMQ DEALER→ROUTER with 100-byte messages, measured on this machine in the same run: the
 * baseline the cluster benchmarks compare against, since absolute figures on shared machines are noisy.
 */
export async function measureRawZmqBaseline() {
  const raw = await measureRawZmq({
    pattern: 'dealer-router',
    messages: BENCH_SHORT ? 20_000 : 200_000,
    size: 100,
  });
  return {
    pattern: 'dealer-router' as const,
    messageBytes: 100,
    messagesPerSecond: Math.round(raw.messagesPerSecond),
  };
}

/** `perSecond` as a multiple of the baseline's messages/s, to 3 decimals. */
export function ratioToRaw(perSecond: number, baseline: { messagesPerSecond: number }): number {
  return Number((perSecond / baseline.messagesPerSecond).toFixed(3));
}
