import { existsSync } from 'node:fs';
import {
  formatMatchmakerIdentity,
  LogExistsError,
  LogIdentityError,
  LogMissingError,
  type MatchmakerIdentity,
  MatchmakerStore,
  nodeStorage,
  type OpenedMatchmakerStore,
} from '@paxos/acceptor-log';
import { type ConfigSpec, configSpecOf } from '@paxos/core';
import { z } from 'zod';
import { ConfigError, setting } from './config.ts';
import { ACCEPTOR_LOG_STATES, type AcceptorLogState, CREATE_MODE, stateDir } from './wal.ts';

export { durableMatchmaker, type MatchmakerIdentity } from '@paxos/acceptor-log';

/** The matchmaker's MATCHMAKER_STATE setting, the acceptor's ACCEPTOR_LOG_STATE for its state file. */
export const MATCHMAKER_STATE_SETTING = setting({
  env: 'MATCHMAKER_STATE',
  flag: '--state',
  description:
    'new: start from the genesis configuration (F, ACCEPTOR_GROUPS) if there is no state yet, else recover it; existing: this matchmaker has run before, so its state must be there (refused if missing); replacement: its old state is lost for good, so start with none (it answers nothing until bootstrapped; refused if a state is there)',
  expected: 'one of new, existing, replacement',
  schema: z.enum(ACCEPTOR_LOG_STATES),
  default: 'new',
});

/**
 * The directory of a matchmaker's state under DATA_DIR: `<cluster>-m<id>`, so the matchmakers
 * of a local cluster can share DATA_DIR with its acceptors. `@paxos/launcher`'s `stateDirOf`
 * repeats this rule (a test checks they agree).
 */
export function matchmakerStoreDir(dataDir: string, identity: MatchmakerIdentity): string {
  return stateDir(dataDir, identity.cluster, `m${identity.matchmakerId}`);
}

/** The cluster's first configuration: groups 0..G-1, acceptor ids 0..2f, version 0. */
export function genesisSpec(f: number, groupCount: number): ConfigSpec {
  const acceptors = Array.from({ length: 2 * f + 1 }, () => '');
  return configSpecOf(
    { f, groups: Array.from({ length: groupCount }, (_, groupId) => ({ groupId, acceptors })) },
    0,
  );
}

/**
 * Opens matchmaker `identity`'s state under `dataDir` on real files. `state` null: none there
 * (`new` then starts from genesis, `replacement` with nothing). Refused with a `ConfigError`
 * (one line, exit 2): another matchmaker's state, no state with `existing`, a state with
 * `replacement`. Damage is a `LogCorruptError`. `warning`: a line to log at warn, or null.
 */
export function openMatchmakerStore(
  dataDir: string,
  identity: MatchmakerIdentity,
  options: { fsync: boolean; state: AcceptorLogState },
): OpenedMatchmakerStore & { dir: string; warning: string | null } {
  const dir = matchmakerStoreDir(dataDir, identity);
  const who = `this matchmaker (${formatMatchmakerIdentity(identity)})`;
  let opened: OpenedMatchmakerStore;
  try {
    opened = MatchmakerStore.open(nodeStorage(dir, { syncAtomic: options.fsync }), {
      identity,
      create: CREATE_MODE[options.state],
    });
  } catch (err) {
    if (err instanceof LogIdentityError) throw new ConfigError(err.message);
    if (err instanceof LogMissingError)
      throw new ConfigError(
        `matchmaker state ${dir} is ${existsSync(dir) ? 'empty' : 'missing'}, but MATCHMAKER_STATE (--state) is "existing": ${who} has run before, and starting it from genesis would forget the configurations it recorded, which can let a leader skip one that holds chosen values. Restore the state there; or, if it is lost for good, start it with MATCHMAKER_STATE=replacement (--state replacement), which answers nothing until a matchmaker reconfiguration bootstraps it`,
      );
    if (err instanceof LogExistsError)
      throw new ConfigError(
        `MATCHMAKER_STATE (--state) is "replacement", which starts ${who} with no state, but ${dir} already holds one: refusing to discard it. Move it out of the way (e.g. to ${dir}.old) to start the replacement, or start with MATCHMAKER_STATE=existing to recover from it`,
      );
    throw err;
  }
  const warning =
    options.state === 'replacement'
      ? `started as a replacement with no state: ${who} answers nothing until a matchmaker reconfiguration bootstraps it (not implemented yet), and counts as one of the f matchmakers that may fail`
      : null;
  return { dir, ...opened, warning };
}
