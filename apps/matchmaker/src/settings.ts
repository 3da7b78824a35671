import {
  ACCEPTOR_GROUPS_SETTING,
  dataDirSetting,
  dataFsyncSetting,
  F_SETTING,
  integer,
  MATCHMAKER_STATE_SETTING,
  port,
  setting,
} from '@paxos/runtime';

/** The matchmaker's own settings (the common ones are added by `runApp`). */
export const MATCHMAKER_SETTINGS = {
  port: port('MATCHMAKER_PORT', '--port', 'MatchA and GarbageA from proposers', 15000),
  matchmakerId: setting({
    env: 'MATCHMAKER_ID',
    flag: '--matchmaker-id',
    description: 'the id of this matchmaker; the first set is 0..2f',
    expected: 'an integer >= 0',
    schema: integer(0),
  }),
  dataDir: dataDirSetting('directory of the state: this one is <ANNA_KEY_PREFIX or paxos>-m<id> in it'),
  fsync: dataFsyncSetting('fsync each new state (and its directory) before the replies that announce it'),
  f: F_SETTING,
  groups: ACCEPTOR_GROUPS_SETTING,
  state: MATCHMAKER_STATE_SETTING,
};
