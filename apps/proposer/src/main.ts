import { randomInt } from 'node:crypto';
import { type Members, Proposer } from '@paxos/core';
import {
  endpoint,
  integer,
  type MemberKind,
  Node,
  nodeOptions,
  port,
  runApp,
  setting,
  waitForConfiguration,
} from '@paxos/runtime';

const KIND_TO_MEMBERS: Partial<Record<MemberKind, keyof Members>> = {
  Proposers: 'proposers',
  Batchers: 'batchers',
  ProxyLeaders: 'proxyLeaders',
};

await runApp({
  program: 'paxos-proposer',
  description: 'Proposer: one leads (slots, phase 1, re-proposals); the others watch its heartbeats.',
  settings: {
    batchPort: port('PROPOSER_PORT', '--port', 'batches from batchers', 11000),
    replyPort: port('PROPOSER_REPLY_PORT', '--reply-port', 'phase-1b, chosen and nacks', 11100),
    electionPort: port('PROPOSER_ELECTION_PORT', '--election-port', 'heartbeats between proposers', 11200),
    f: setting({
      env: 'F',
      flag: '--f',
      description: 'failures tolerated per acceptor group',
      expected: 'an integer >= 0',
      schema: integer(0),
      default: '1',
    }),
    groups: setting({
      env: 'ACCEPTOR_GROUPS',
      flag: '--acceptor-groups',
      description: 'acceptor groups in the configuration (waits until the directory lists them)',
      expected: 'an integer >= 1',
      schema: integer(1),
      default: '2',
    }),
    heartbeatMs: setting({
      env: 'HEARTBEAT_INTERVAL_MS',
      flag: '--heartbeat-interval-ms',
      description: 'leader heartbeat period',
      expected: 'an integer >= 1 (milliseconds)',
      schema: integer(1),
      default: '100',
    }),
    electionTimeoutMs: setting({
      env: 'ELECTION_TIMEOUT_MS',
      flag: '--election-timeout-ms',
      description: 'leader silence before an election',
      expected: 'an integer >= 1 (milliseconds)',
      schema: integer(1),
      default: '500',
    }),
    electionJitterMs: setting({
      env: 'ELECTION_JITTER_MS',
      flag: '--election-jitter-ms',
      description: 'random extra election wait',
      expected: 'an integer >= 1 (milliseconds)',
      schema: integer(1),
      default: '500',
    }),
    resendTimeoutMs: setting({
      env: 'RESEND_TIMEOUT_MS',
      flag: '--resend-timeout-ms',
      description: 'a slot not chosen within this is proposed again',
      expected: 'an integer >= 1 (milliseconds)',
      schema: integer(1),
      default: '500',
    }),
  },
  async main(s, logger) {
    const node = await Node.start(
      nodeOptions(s, logger, 'proposer', [
        endpoint(s.privateIp, s.batchPort),
        endpoint(s.privateIp, s.replyPort),
        endpoint(s.privateIp, s.electionPort),
      ]),
    );
    const config = await waitForConfiguration(node.membership, {
      groups: s.groups,
      f: s.f,
      pollMs: s.directoryPollMs,
      logger,
    });
    logger.info({ groups: config.groups.map((g) => g.groupId) }, 'configuration ready');
    let proposer: Proposer | null = null;
    const members: { -readonly [K in keyof Members]: readonly string[] } = {
      proposers: [],
      batchers: [],
      proxyLeaders: [],
      unbatchers: [],
    };
    await node.watch(
      ['Proposers', 'Batchers', 'ProxyLeaders'],
      (kind, list) => {
        const key = KIND_TO_MEMBERS[kind];
        if (key === undefined) return null;
        members[key] = list;
        return { [key]: list };
      },
      () => proposer,
    );
    proposer = new Proposer({
      address: node.address,
      // Unique per incarnation, so a restarted proposer never reuses a ballot of its past life.
      proposerId: randomInt(1, 2 ** 31 - 1),
      config,
      members,
      random: Math.random,
      timing: {
        heartbeatIntervalMs: s.heartbeatMs,
        electionTimeoutMs: s.electionTimeoutMs,
        electionJitterMs: s.electionJitterMs,
        resendTimeoutMs: s.resendTimeoutMs,
        phase1RetryMs: Math.max(50, s.heartbeatMs * 2),
      },
    });
    node.attach(proposer);
    await node.register('Proposers');
    return { node, isDrained: () => (proposer?.inflightSlots ?? 0) === 0 };
  },
});
