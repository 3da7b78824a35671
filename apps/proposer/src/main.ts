import { randomInt } from 'node:crypto';
import {
  type AcceptorAddress,
  type ConfigSpec,
  type Configuration,
  describeConfiguration,
  type MatchmakerEpoch,
  type Members,
  Proposer,
} from '@paxos/core';
import {
  ACCEPTOR_GROUPS_SETTING,
  assertSameConfiguration,
  configurationAt,
  endpoint,
  F_SETTING,
  integer,
  liveAcceptorAddresses,
  liveById,
  type MemberKind,
  Node,
  nodeOptions,
  pinConfiguration,
  port,
  readMatchmakerEpoch,
  readTargetConfiguration,
  readTargetMatchmakers,
  recordedConfiguration,
  runApp,
  setting,
  shapeOf,
  waitForConfiguration,
  waitForMatchmakers,
  writeMatchmakerEpoch,
  writeTargetConfiguration,
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
    f: F_SETTING,
    groups: ACCEPTOR_GROUPS_SETTING,
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
    stepDownMs: setting({
      env: 'LEADER_STEP_DOWN_MS',
      flag: '--leader-step-down-ms',
      description:
        'a leader that cannot hear its own heartbeats, or hears nothing about its slots, for this long steps down',
      expected: 'an integer >= 1 (milliseconds)',
      schema: integer(1),
      default: '1500',
    }),
    stallTimeoutMs: setting({
      env: 'LEADER_STALL_TIMEOUT_MS',
      flag: '--leader-stall-timeout-ms',
      description:
        "followers run for election when the leader's heartbeats show slots pending and no progress this long",
      expected: 'an integer >= 1 (milliseconds)',
      schema: integer(1),
      default: '3000',
    }),
    maxOutstandingSlots: setting({
      env: 'MAX_OUTSTANDING_SLOTS',
      flag: '--max-outstanding-slots',
      description:
        'slots the leader has in phase 2 at once; further batches queue, then batchers are asked to back off',
      expected: 'an integer >= 1',
      schema: integer(1),
      default: '4096',
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
    // A proposer whose F or ACCEPTOR_GROUPS differ from the cluster's would map slots to other
    // groups: it refuses to start (exit 2) before it waits for anything.
    const shape = shapeOf(s.f, s.groups);
    assertSameConfiguration(shape, await recordedConfiguration(node.membership));
    // Once the configuration has changed (a target in the directory), the genesis groups may be
    // gone: start from the target, at the addresses the directory lists. Otherwise wait for the
    // genesis groups to form.
    const target = await readTargetConfiguration(node.membership);
    let config: Configuration;
    if (target === null) {
      config = await waitForConfiguration(node.membership, { shape, pollMs: s.directoryPollMs, logger });
      await pinConfiguration(node, config);
    } else {
      config = configurationAt(target, await liveAcceptorAddresses(node.membership));
    }
    logger.info(
      { configuration: describeConfiguration(config), version: target?.version ?? 0 },
      'configuration ready',
    );
    // Elections go through the 2f+1 matchmakers (MatchA → f+1 MatchB → phase 1): the newest set a
    // proposer published, or (a new cluster) matchmakers 0..2f once they are registered.
    const published = await readMatchmakerEpoch(node.membership);
    const matchmakers =
      published ??
      ({
        epoch: 0,
        addresses: await waitForMatchmakers(node.membership, { f: s.f, pollMs: s.directoryPollMs, logger }),
      } satisfies MatchmakerEpoch);
    logger.info({ matchmakers: matchmakers.addresses, epoch: matchmakers.epoch }, 'matchmakers ready');
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
      configVersion: target?.version ?? 0,
      address: node.address,
      // Unique per incarnation, so a restarted proposer never reuses a ballot of its past life.
      proposerId: randomInt(1, 2 ** 31 - 1),
      config,
      matchmakers: { addresses: matchmakers.addresses, epoch: matchmakers.epoch, f: s.f },
      members,
      random: Math.random,
      timing: {
        heartbeatIntervalMs: s.heartbeatMs,
        electionTimeoutMs: s.electionTimeoutMs,
        electionJitterMs: s.electionJitterMs,
        resendTimeoutMs: s.resendTimeoutMs,
        phase1RetryMs: Math.max(50, s.heartbeatMs * 2),
        stepDownMs: s.stepDownMs,
        stallTimeoutMs: s.stallTimeoutMs,
      },
      limits: { maxOutstandingSlots: s.maxOutstandingSlots },
    });
    node.attach(proposer);
    // Ready once some leader is known; a leader knows itself, so a cluster's first leader is ready
    // as soon as it is elected, and the others once they hear its heartbeats.
    node.requireForReadiness(() => (proposer?.leader == null ? 'no leader known' : null));
    await node.register('Proposers');
    const watcher = watchConfiguration(node, proposer, s.directoryPollMs, logger);
    return {
      node,
      isDrained: () => (proposer?.inflightSlots ?? 0) === 0,
      onStopped: () => clearInterval(watcher),
    };
  },
});

/**
 * Every poll: the acceptors' addresses (new ones join, replaced ones leave) and the operator's
 * target configuration go to the proposer, which moves to a newer target once it leads. A target
 * the directory lost (a restart) is written again from what this proposer knows: by version, so
 * it never undoes a newer one. The same for matchmakers: the operator's set (ids, resolved to
 * addresses once all are registered) goes to the proposer, and the set it uses is published for
 * proposers that start later.
 */
function watchConfiguration(
  node: Node,
  proposer: Proposer,
  pollMs: number,
  logger: Parameters<Parameters<typeof runApp>[0]['main']>[1],
): NodeJS.Timeout {
  let acceptorsSeen = '';
  let targetVersion = -1;
  let matchmakerTargetVersion = -1;
  let polling = false;
  const poll = async (): Promise<void> => {
    const acceptors: AcceptorAddress[] = await liveAcceptorAddresses(node.membership);
    const key = JSON.stringify(acceptors);
    if (key !== acceptorsSeen) {
      acceptorsSeen = key;
      node.deliver(proposer, { type: 'acceptors', acceptors });
    }
    const target: ConfigSpec | null = await readTargetConfiguration(node.membership);
    if (target !== null && target.version > targetVersion) {
      targetVersion = target.version;
      logger.info({ version: target.version, groups: target.groups }, 'target configuration');
      node.deliver(proposer, { type: 'target', spec: target });
    } else if (target === null && proposer.latestConfiguration.version > 0) {
      await writeTargetConfiguration(node.membership, proposer.latestConfiguration);
    }
    const wanted = await readTargetMatchmakers(node.membership);
    if (wanted !== null && wanted.version > matchmakerTargetVersion) {
      const byId = await liveById(node.membership, 'Matchmakers');
      const addresses = wanted.ids.map((id) => byId.get(id));
      if (addresses.every((a) => a !== undefined)) {
        matchmakerTargetVersion = wanted.version;
        logger.info({ version: wanted.version, ids: wanted.ids }, 'target matchmakers');
        node.deliver(proposer, { type: 'matchmakers', addresses });
      }
    }
    const using = proposer.matchmakerSet;
    if (using !== null && using.epoch > 0) {
      const hint = await readMatchmakerEpoch(node.membership);
      if (hint === null || hint.epoch < using.epoch) {
        logger.info({ epoch: using.epoch, matchmakers: using.addresses }, 'matchmaker set published');
        await writeMatchmakerEpoch(node.membership, using);
      }
    }
  };
  const timer = setInterval(() => {
    if (polling) return;
    polling = true;
    poll()
      .catch((err: unknown) => logger.debug({ err: (err as Error).message }, 'configuration poll failed'))
      .finally(() => {
        polling = false;
      });
  }, pollMs);
  timer.unref();
  return timer;
}
