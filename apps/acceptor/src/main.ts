import path from 'node:path';
import { Acceptor } from '@paxos/core';
import {
  AcceptorLog,
  boolean,
  durableAcceptor,
  endpoint,
  integer,
  Node,
  nodeOptions,
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
      description: 'directory of the acceptor log',
      expected: 'a directory path',
      schema: text(),
      default: './paxos-data',
    }),
    fsync: setting({
      env: 'DATA_FSYNC',
      flag: '--fsync',
      description: 'fdatasync the log (once per read burst) before replying (survives machine crashes)',
      expected: 'true or false',
      schema: boolean(),
      default: 'false',
    }),
  },
  async main(s, logger) {
    const file = path.join(s.dataDir, `${s.annaKeyPrefix || 'paxos'}-g${s.groupId}-a${s.acceptorId}.wal`);
    const { log, state, records, tornBytes } = AcceptorLog.open(file, { fsync: s.fsync });
    logger.info({ file, records, tornBytes }, 'acceptor log opened');
    const node = await Node.start(nodeOptions(s, logger, 'acceptor', [endpoint(s.privateIp, s.port)]));
    const acceptor = new Acceptor({
      address: node.address,
      groupId: s.groupId,
      acceptorId: s.acceptorId,
      recovered: state,
    });
    // Replies wait for their records: one write (and fdatasync with DATA_FSYNC) per read burst.
    const durable = durableAcceptor(acceptor, log, { release: (effects) => node.perform(durable, effects) });
    node.attach(durable);
    await registerAcceptor(node, s.groupId, s.acceptorId);
    return { node, onStopped: () => log.close() };
  },
});
