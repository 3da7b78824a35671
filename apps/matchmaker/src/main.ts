import { genesisState, Matchmaker } from '@paxos/core';
import {
  durableMatchmaker,
  endpoint,
  failStopCommit,
  genesisSpec,
  Node,
  nodeOptions,
  openMatchmakerStore,
  registerMatchmaker,
  runApp,
} from '@paxos/runtime';
import { MATCHMAKER_SETTINGS } from './settings.ts';

await runApp({
  program: 'paxos-matchmaker',
  description:
    'One matchmaker (2f+1 in all): records the configuration of each ballot before its leader uses it, and tells a new leader the earlier ones.',
  settings: MATCHMAKER_SETTINGS,
  async main(s, logger) {
    // The state's identity: another cluster's or matchmaker's state is refused (exit 2), and so
    // are a missing state with MATCHMAKER_STATE=existing and a state there with replacement.
    const identity = { cluster: s.annaKeyPrefix || 'paxos', matchmakerId: s.matchmakerId };
    const opened = openMatchmakerStore(s.dataDir, identity, { fsync: s.fsync, state: s.state });
    const { store, dir, warning } = opened;
    // Genesis only for a new matchmaker with no state: never over a state, never on a restart.
    // Saved before anything else can fail (a port in use), so a restart (`existing`) finds it.
    if (opened.state === null && s.state === 'new') store.save(genesisState(genesisSpec(s.f, s.groups)));
    const state = store.saved;
    logger.info(
      { dir, state: s.state, fsync: s.fsync, entries: state?.entries.length ?? null },
      opened.state !== null
        ? 'matchmaker state recovered'
        : state !== null
          ? 'matchmaker state created from the genesis configuration'
          : 'matchmaker started with no state (pending: answers nothing)',
    );
    if (warning !== null) logger.warn({ dir, state: s.state }, warning);
    const node = await Node.start(nodeOptions(s, logger, 'matchmaker', [endpoint(s.privateIp, s.port)]));
    const matchmaker = new Matchmaker({
      address: node.address,
      matchmakerId: s.matchmakerId,
      ...(state === null ? {} : { recovered: state }),
    });
    const gauge = () => node.metrics.setLiveConfigurations(matchmaker.state?.entries.length ?? 0);
    // Replies wait for the state they announce: one atomic replace (fsync with DATA_FSYNC) per read burst.
    const durable = durableMatchmaker(matchmaker, store, {
      release: (effects) => node.perform(durable, effects),
      // Fail-stop, as the acceptor: never answer for a state that is not on disk.
      schedule: failStopCommit(logger, 'matchmaker state', dir, () => durable.heldMessages, gauge),
    });
    gauge();
    node.attach({
      address: durable.address,
      start: (now) => durable.start(now),
      step: (now, event) => {
        if (event.type === 'message') node.metrics.matchmakerRequest(event.message.type);
        return durable.step(now, event);
      },
    });
    await registerMatchmaker(node, s.matchmakerId);
    return { node };
  },
});
