import { Unbatcher } from '@paxos/core';
import { endpoint, Node, nodeOptions, port, runApp } from '@paxos/runtime';

await runApp({
  program: 'paxos-unbatcher',
  description: 'Splits chosen batches and sends one reply per client command.',
  settings: {
    port: port('UNBATCHER_PORT', '--port', 'chosen batches from proxy leaders', 14000),
  },
  async main(s, logger) {
    const node = await Node.start(nodeOptions(s, logger, 'unbatcher', [endpoint(s.privateIp, s.port)]));
    node.attach(new Unbatcher({ address: node.address }));
    await node.register('Unbatchers');
    return { node, drainUntilQuiet: true };
  },
});
