import { ProxyLeader } from '@paxos/core';
import { endpoint, integer, Node, nodeOptions, port, runApp, setting } from '@paxos/runtime';

await runApp({
  program: 'paxos-proxy-leader',
  description: 'Runs phase 2 for the leader: phase-2a to the slot group, counts votes, announces chosen.',
  settings: {
    port: port('PROXY_LEADER_PORT', '--port', 'phase-2a from leaders', 12100),
    acceptorPort: port(
      'PROXY_LEADER_ACCEPTOR_PORT',
      '--acceptor-port',
      'phase-2b and nacks from acceptors',
      12200,
    ),
    thriftyTimeoutMs: setting({
      env: 'THRIFTY_TIMEOUT_MS',
      flag: '--thrifty-timeout-ms',
      description: 'phase-2a goes to f+1 acceptors, to all 2f+1 if not chosen within this',
      expected: 'an integer >= 1 (milliseconds)',
      schema: integer(1),
      default: '50',
    }),
    suspectMs: setting({
      env: 'THRIFTY_SUSPECT_MS',
      flag: '--thrifty-suspect-ms',
      description:
        'an acceptor that let a thrifty send time out gets no thrifty sends for this long, or until it votes',
      expected: 'an integer >= 0 (milliseconds)',
      schema: integer(0),
      default: '1000',
    }),
  },
  async main(s, logger) {
    const node = await Node.start(
      nodeOptions(s, logger, 'proxy_leader', [
        endpoint(s.privateIp, s.port),
        endpoint(s.privateIp, s.acceptorPort),
      ]),
    );
    let proxy: ProxyLeader | null = null;
    let unbatchers: readonly string[] = [];
    await node.watch(
      ['Unbatchers'],
      (_kind, members) => {
        unbatchers = members;
        return { unbatchers: members };
      },
      () => proxy,
    );
    proxy = new ProxyLeader({
      address: node.address,
      members: { unbatchers },
      timing: { thriftyTimeoutMs: s.thriftyTimeoutMs, suspectMs: s.suspectMs },
    });
    node.attach(proxy);
    await node.register('ProxyLeaders');
    return { node, isDrained: () => proxy?.inflightSlots === 0, drainUntilQuiet: true };
  },
});
