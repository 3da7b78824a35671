import { randomBytes } from 'node:crypto';
import type { Address } from '@paxos/core';
import { LatencyHistogram } from '@paxos/latency';
import {
  BATCH_SIZE_SETTING,
  boolean,
  endpoint,
  integer,
  liveById,
  liveMembers,
  type MemberKind,
  Node,
  nodeOptions,
  PAYLOAD_BYTES_SETTING,
  port,
  registerAcceptor,
  runApp,
  setting,
} from '@paxos/runtime';
import { z } from 'zod';
import { createMock, MOCK_MODES, type MockMembers, type MockMode } from './mocks.ts';

/** What each mode registers as in the directory, like the real role it stands in for. */
const REGISTERS_AS: Record<MockMode, MemberKind | null> = {
  client: null,
  batcher: 'Batchers',
  proposer: 'Proposers',
  'proposer-to-proxy-leader': 'Proposers',
  'proxy-leader-to-proposer': 'ProxyLeaders',
  'proxy-leader-to-acceptor': 'ProxyLeaders',
  'proxy-leader-to-unbatcher': 'ProxyLeaders',
  acceptor: null,
  unbatcher: 'Unbatchers',
};

await runApp({
  program: 'paxos-mock',
  description: `Mock component: stands in for a neighbour of the role under test. Modes: ${MOCK_MODES.join(', ')}.`,
  settings: {
    mode: setting({
      env: 'MOCK_MODE',
      flag: '--mode',
      description: 'which neighbour to play',
      expected: `one of ${MOCK_MODES.join(', ')}`,
      schema: z.enum(MOCK_MODES),
    }),
    port: port('MOCK_PORT', '--port', 'where the role under test sends to this mock', 15500),
    window: setting({
      env: 'MOCK_WINDOW',
      flag: '--window',
      description: 'input mocks: units of work in flight',
      expected: 'an integer >= 1',
      schema: integer(1),
      default: '64',
    }),
    batchSize: BATCH_SIZE_SETTING,
    payloadBytes: PAYLOAD_BYTES_SETTING,
    leader: setting({
      env: 'MOCK_LEADER',
      flag: '--leader',
      description: 'proposer mode: this mock leads',
      expected: 'true or false',
      schema: boolean(),
      default: 'true',
    }),
    groupId: setting({
      env: 'ACCEPTOR_GROUP_ID',
      flag: '--group-id',
      description: 'acceptor mode: its group',
      expected: 'an integer >= 0',
      schema: integer(0),
      default: '0',
    }),
    acceptorId: setting({
      env: 'ACCEPTOR_ID',
      flag: '--acceptor-id',
      description: 'acceptor mode: its index in the group',
      expected: 'an integer >= 0',
      schema: integer(0),
      default: '0',
    }),
    reportMs: setting({
      env: 'REPORT_INTERVAL_MS',
      flag: '--report-ms',
      description: 'JSON progress line period on stdout (0 = none)',
      expected: 'an integer >= 0',
      schema: integer(0),
      default: '1000',
    }),
  },
  async main(s, logger) {
    let sent = 0;
    let received = 0;
    // The interval's round trips, in bounded memory; reset after each progress line.
    const latencies = new LatencyHistogram();
    const node = await Node.start(nodeOptions(s, logger, 'mock', [endpoint(s.privateIp, s.port)]));
    const mock = createMock(s.mode, {
      address: node.address,
      window: s.window,
      batchSize: s.batchSize,
      payload: randomBytes(s.payloadBytes),
      leader: s.leader,
      groupId: s.groupId,
      acceptorId: s.acceptorId,
      counters: {
        sent: (n) => {
          sent += n;
          node.metrics.mockSent(n);
        },
        received: (n, latencyMs) => {
          received += n;
          node.metrics.mockReceived(n);
          if (latencyMs !== undefined) latencies.recordMs(latencyMs);
        },
      },
    });

    // Mocks read every kind they may need; the directory is small.
    const refresh = async () => {
      const live = (kind: MemberKind) => liveMembers(node.membership, kind);
      const groups = new Map<number, Address[]>();
      for (const id of (await live('AcceptorGroups')).map(Number).filter(Number.isInteger)) {
        const byId = await liveById(node.membership, `${id}`);
        groups.set(
          id,
          [...byId].sort(([a], [b]) => a - b).map(([, address]) => address),
        );
      }
      const members: MockMembers = {
        proposers: await live('Proposers'),
        batchers: await live('Batchers'),
        proxyLeaders: await live('ProxyLeaders'),
        unbatchers: await live('Unbatchers'),
        acceptorGroups: groups,
      };
      mock.setMembers(members);
    };
    await refresh();
    const poll = setInterval(
      () => void refresh().catch((err: Error) => logger.warn({ err: err.message }, 'directory poll failed')),
      s.directoryPollMs,
    );

    node.attach(mock);
    const kind = REGISTERS_AS[s.mode];
    if (kind !== null) await node.register(kind);
    if (s.mode === 'acceptor') await registerAcceptor(node, s.groupId, s.acceptorId);

    let last = performance.now();
    const report =
      s.reportMs > 0
        ? setInterval(() => {
            const now = performance.now();
            const line = {
              type: 'mock',
              mode: s.mode,
              seconds: (now - last) / 1000,
              sent,
              received,
              p50Ms: latencies.percentileMs(0.5),
              p99Ms: latencies.percentileMs(0.99),
              // So the benchmark can merge the intervals of its measured window exactly.
              histogram: latencies.encode(),
            };
            process.stdout.write(`${JSON.stringify(line)}\n`);
            latencies.reset();
            last = now;
          }, s.reportMs)
        : null;
    logger.info({ mode: s.mode, address: node.address }, 'mock ready');
    return {
      node,
      onStopped: () => {
        clearInterval(poll);
        if (report !== null) clearInterval(report);
      },
    };
  },
});
