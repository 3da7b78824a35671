import { drainTimeoutOf } from '@paxos/launcher';
import { COMMON_SETTINGS, loadSettings, resolveDrainTimeoutMs } from '@paxos/runtime';
import { describe, expect, it } from 'vitest';

describe('drain timeout', () => {
  it('is the same for the launcher (its default stop grace) as for the process it stops', () => {
    const envs: Record<string, string>[] = [
      {},
      { DIRECTORY_POLL_MS: '300' },
      { DIRECTORY_POLL_MS: '3000' },
      { DIRECTORY_POLL_MS: '1400', DRAIN_TIMEOUT_MS: '0' },
      { DIRECTORY_POLL_MS: '300', DRAIN_TIMEOUT_MS: '20000' },
      { DRAIN_TIMEOUT_MS: '500' },
    ];
    for (const env of envs) {
      const settings = loadSettings('p', 'd', COMMON_SETTINGS, [], {
        ANNA_ROUTING: 'tcp://127.0.0.1:1',
        ...env,
      });
      expect(drainTimeoutOf(env), JSON.stringify(env)).toBe(resolveDrainTimeoutMs(settings));
    }
  });
});
