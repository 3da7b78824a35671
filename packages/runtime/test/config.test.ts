import { describe, expect, it } from 'vitest';
import { COMMON_SETTINGS, ConfigError, integer, loadSettings, setting } from '../src/config.ts';

const spec = {
  ...COMMON_SETTINGS,
  batchSize: setting({
    env: 'BATCH_SIZE',
    flag: '--batch-size',
    description: 'x',
    expected: 'an integer >= 1',
    schema: integer(1),
    default: '40',
  }),
};
const env = { ANNA_ROUTING: 'tcp://127.0.0.1:6450' };

describe('settings', () => {
  it('reads environment variables, applies defaults, and lets flags override', () => {
    const s = loadSettings('t', 'd', spec, [], { ...env, BATCH_SIZE: '10' });
    expect(s.batchSize).toBe(10);
    expect(s.annaRouting).toEqual(['tcp://127.0.0.1:6450']);
    expect(s.maxReadsPerSocketPerPoll).toBe(100);
    expect(loadSettings('t', 'd', spec, ['--batch-size', '7'], { ...env, BATCH_SIZE: '10' }).batchSize).toBe(
      7,
    );
  });

  it('names the variable, the bad value and what is expected', () => {
    expect(() => loadSettings('t', 'd', spec, [], { ...env, BATCH_SIZE: 'ten' })).toThrow(
      new ConfigError('BATCH_SIZE (--batch-size): got "ten", expected an integer >= 1'),
    );
    expect(() => loadSettings('t', 'd', spec, [], { ANNA_ROUTING: '127.0.0.1:6450' })).toThrow(
      /ANNA_ROUTING .*expected tcp:\/\/host:port/,
    );
    expect(() => loadSettings('t', 'd', spec, [], {})).toThrow('ANNA_ROUTING (--anna-routing) is required');
    expect(() => loadSettings('t', 'd', spec, ['--log-level', 'loud'], env)).toThrow(/LOG_LEVEL .*"loud"/);
    expect(() => loadSettings('t', 'd', spec, ['--no-such-flag'], env)).toThrow(ConfigError);
    expect(() => loadSettings('t', 'd', spec, ['--batch-size', '0'], env)).toThrow(
      /got "0", expected an integer >= 1/,
    );
  });
});
