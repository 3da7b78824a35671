import { Batcher } from '@paxos/core';
import {
  BATCH_SIZE_SETTING,
  endpoint,
  integer,
  Node,
  nodeOptions,
  port,
  runApp,
  setting,
} from '@paxos/runtime';

await runApp({
  program: 'paxos-batcher',
  description: 'Groups client commands into batches and sends them to the leader.',
  settings: {
    port: port('BATCHER_PORT', '--port', 'client commands and leader announcements', 13000),
    batchSize: BATCH_SIZE_SETTING,
    batchTimeoutMs: setting({
      env: 'BATCH_TIMEOUT_MS',
      flag: '--batch-timeout-ms',
      description: 'a partial batch is sent after this long; 0 = once the current burst of reads is handled',
      expected: 'an integer >= 0 (milliseconds)',
      schema: integer(0),
      default: '0',
    }),
    leaderTimeoutMs: setting({
      env: 'BATCHER_LEADER_TIMEOUT_MS',
      flag: '--leader-timeout-ms',
      description:
        'follow the highest-ballot leader until it is silent this long, then any proposer that says it leads',
      expected: 'an integer >= 1 (milliseconds)',
      schema: integer(1),
      default: '1000',
    }),
  },
  async main(s, logger) {
    const node = await Node.start(nodeOptions(s, logger, 'batcher', [endpoint(s.privateIp, s.port)]));
    let batcher: Batcher | null = null;
    let proposers: readonly string[] = [];
    await node.watch(
      ['Proposers'],
      (_kind, members) => {
        proposers = members;
        return { proposers: members };
      },
      () => batcher,
    );
    batcher = new Batcher({
      address: node.address,
      members: { proposers },
      batchSize: s.batchSize,
      batchTimeoutMs: s.batchTimeoutMs,
      leaderTimeoutMs: s.leaderTimeoutMs,
    });
    node.attach(batcher);
    await node.register('Batchers');
    return { node, isDrained: () => batcher?.buffered === 0, drainUntilQuiet: true };
  },
});
