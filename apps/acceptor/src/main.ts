import { Acceptor } from '@paxos/core';
import {
  ACCEPTOR_LOG_STATE_SETTING,
  DEFAULT_SEGMENT_BYTES,
  dataDirSetting,
  dataFsyncSetting,
  durableAcceptor,
  endpoint,
  failStopCommit,
  integer,
  Node,
  nodeOptions,
  openAcceptorLog,
  port,
  registerAcceptor,
  runApp,
  setting,
} from '@paxos/runtime';

await runApp({
  program: 'paxos-acceptor',
  description:
    'One acceptor of an acceptor group (2f+1 per group); its log is the durable memory of the system.',
  settings: {
    port: port('ACCEPTOR_PORT', '--port', 'phase 1/2 from proposers and proxy leaders', 12000),
    groupId: setting({
      env: 'ACCEPTOR_GROUP_ID',
      flag: '--group-id',
      description: 'the acceptor group this acceptor belongs to',
      expected: 'an integer >= 0',
      schema: integer(0),
    }),
    acceptorId: setting({
      env: 'ACCEPTOR_ID',
      flag: '--acceptor-id',
      description: 'index of this acceptor in its group, 0..2f',
      expected: 'an integer >= 0',
      schema: integer(0),
    }),
    dataDir: dataDirSetting(
      'directory of the acceptor logs: this one is <ANNA_KEY_PREFIX or paxos>-g<group>-a<id> in it',
    ),
    fsync: dataFsyncSetting(
      'fdatasync the log (once per read burst) before replying, so votes survive a machine crash',
    ),
    logState: ACCEPTOR_LOG_STATE_SETTING,
    segmentBytes: setting({
      env: 'DATA_SEGMENT_BYTES',
      flag: '--segment-bytes',
      description: 'start a new log segment once one holds this many bytes',
      expected: 'an integer >= 1024',
      schema: integer(1024),
      default: String(DEFAULT_SEGMENT_BYTES),
    }),
  },
  async main(s, logger) {
    // The log's identity: a log of another cluster, group or acceptor is refused (exit 2), and
    // so are a missing log with ACCEPTOR_LOG_STATE=existing and a log there with replacement.
    const identity = { cluster: s.annaKeyPrefix || 'paxos', groupId: s.groupId, acceptorId: s.acceptorId };
    const started = performance.now();
    const { log, state, recovery, dir, warning } = openAcceptorLog(s.dataDir, identity, {
      fsync: s.fsync,
      segmentBytes: s.segmentBytes,
      logState: s.logState,
    });
    logger.info(
      { dir, ...recovery, ms: Math.round(performance.now() - started), fsync: s.fsync, logState: s.logState },
      recovery.created ? 'acceptor log created' : 'acceptor log recovered',
    );
    if (warning !== null) logger.warn({ dir, logState: s.logState }, warning);
    const node = await Node.start(nodeOptions(s, logger, 'acceptor', [endpoint(s.privateIp, s.port)]));
    const acceptor = new Acceptor({
      address: node.address,
      groupId: s.groupId,
      acceptorId: s.acceptorId,
      recovered: state,
    });
    // Replies wait for their records: one write (and fdatasync with DATA_FSYNC) per read burst.
    const durable = durableAcceptor(acceptor, log, {
      release: (effects) => node.perform(durable, effects),
      // Fail-stop: a failed write logs one line and exits 1; the held replies die with the process.
      schedule: failStopCommit(logger, 'acceptor log', dir, () => durable.heldMessages),
    });
    node.attach(durable);
    await registerAcceptor(node, s.groupId, s.acceptorId);
    return { node, onStopped: () => log.close() };
  },
});
