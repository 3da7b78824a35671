import { Acceptor } from '@paxos/core';
import {
  ACCEPTOR_LOG_STATE_SETTING,
  boolean,
  DEFAULT_SEGMENT_BYTES,
  durableAcceptor,
  endpoint,
  integer,
  Node,
  nodeOptions,
  openAcceptorLog,
  port,
  registerAcceptor,
  runApp,
  setting,
  text,
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
    dataDir: setting({
      env: 'DATA_DIR',
      flag: '--data-dir',
      description:
        'directory of the acceptor logs: this one is <ANNA_KEY_PREFIX or paxos>-g<group>-a<id> in it',
      expected: 'a directory path',
      schema: text(),
      default: './paxos-data',
    }),
    fsync: setting({
      env: 'DATA_FSYNC',
      flag: '--fsync',
      description:
        'fdatasync the log (once per read burst) before replying, so votes survive a machine crash',
      expected: 'true or false',
      schema: boolean(),
      default: 'true',
    }),
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
      schedule: (commit) =>
        setImmediate(() => {
          try {
            commit();
          } catch (err) {
            // Fail-stop: a log that cannot write (disk full, I/O error) must not answer for what
            // it did not write. One line naming the file and the error, then exit 1 before
            // anything else runs; the held replies die with the process.
            const e = err instanceof Error ? err : new Error(String(err));
            const code =
              (e.cause as NodeJS.ErrnoException | undefined)?.code ?? (e as NodeJS.ErrnoException).code;
            const held = durable.heldMessages;
            logger.fatal(
              { dir, code, heldMessages: held },
              `acceptor log write failed, stopping without sending the ${held} message${held === 1 ? '' : 's'} held for it: ${e.message}`,
            );
            process.exit(1);
          }
        }),
    });
    node.attach(durable);
    await registerAcceptor(node, s.groupId, s.acceptorId);
    return { node, onStopped: () => log.close() };
  },
});
