import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ScalingPolicy } from '../src/policy.ts';
import {
  AUTOSCALER_SETTINGS,
  AutoscalerSettingsError,
  parseAutoscalerSettings,
  policySettings,
} from '../src/settings.ts';

function errorOf(values: Record<string, string | undefined>, environment: 'local' | 'ec2' = 'local'): Error {
  try {
    parseAutoscalerSettings(values, environment);
  } catch (err) {
    return err as Error;
  }
  throw new Error(`no error for ${JSON.stringify(values)}`);
}

describe('parseAutoscalerSettings', () => {
  it('refuses an AUTOSCALE_ name it does not know (a typo), naming it', () => {
    const err = errorOf({ AUTOSCALE_STABILIZATION_MS: '10000' });
    expect(err).toBeInstanceOf(AutoscalerSettingsError);
    expect(err.message).toMatch(
      /^AUTOSCALE_STABILIZATION_MS: not a setting, expected one of .*AUTOSCALE_STABILIZATION_S/,
    );
    expect(err.message).not.toContain('\n');
  });

  it('has the local defaults', () => {
    expect(parseAutoscalerSettings({}, 'local')).toEqual({
      intervalMs: 2000,
      targetUtilization: 0.7,
      tolerance: 0.1,
      stabilizationWindowMs: 60_000,
      acceptorGroupStabilizationWindowMs: 300_000,
      readyTimeoutMs: 30_000,
      bounds: {
        batcher: { min: 1, max: 8 },
        'proxy-leader': { min: 1, max: 8 },
        unbatcher: { min: 1, max: 8 },
        'acceptor-group': { min: 1, max: 4 },
      },
      capacityFile: 'bench-results/capacity.json',
    });
  });

  it('has the EC2 defaults', () => {
    expect(parseAutoscalerSettings({}, 'ec2')).toMatchObject({
      intervalMs: 15_000,
      stabilizationWindowMs: 300_000,
      readyTimeoutMs: 300_000,
      bounds: { batcher: { min: 1, max: 16 }, unbatcher: { min: 1, max: 16 } },
    });
  });

  it('reads every setting, seconds as milliseconds, and ignores names it does not know', () => {
    const settings = parseAutoscalerSettings(
      {
        AUTOSCALE_INTERVAL_MS: '500',
        AUTOSCALE_TARGET_UTILIZATION: '1',
        AUTOSCALE_TOLERANCE: '0',
        AUTOSCALE_STABILIZATION_S: '0.5',
        AUTOSCALE_READY_TIMEOUT_S: '90',
        AUTOSCALE_MIN_BATCHERS: '2',
        AUTOSCALE_MAX_BATCHERS: '2',
        AUTOSCALE_MIN_PROXY_LEADERS: '3',
        AUTOSCALE_MAX_PROXY_LEADERS: '40',
        AUTOSCALE_MIN_UNBATCHERS: '4',
        AUTOSCALE_MAX_UNBATCHERS: '5',
        AUTOSCALE_MIN_ACCEPTOR_GROUPS: '2',
        AUTOSCALE_MAX_ACCEPTOR_GROUPS: '3',
        AUTOSCALE_ACCEPTOR_GROUPS_STABILIZATION_S: '120',
        CAPACITY_FILE: '/tmp/c.json',
        PATH: '/usr/bin',
        UNSET: undefined,
      },
      'ec2',
    );
    expect(settings).toEqual({
      intervalMs: 500,
      targetUtilization: 1,
      tolerance: 0,
      stabilizationWindowMs: 500,
      acceptorGroupStabilizationWindowMs: 120_000,
      readyTimeoutMs: 90_000,
      bounds: {
        batcher: { min: 2, max: 2 },
        'proxy-leader': { min: 3, max: 40 },
        unbatcher: { min: 4, max: 5 },
        'acceptor-group': { min: 2, max: 3 },
      },
      capacityFile: '/tmp/c.json',
    });
  });

  // Every setting with values it must refuse.
  const BAD: Record<string, readonly string[]> = {
    AUTOSCALE_INTERVAL_MS: ['', '99', '2000.5', '-1', '2s', 'abc'],
    AUTOSCALE_TARGET_UTILIZATION: ['0', '1.01', '-0.5', 'NaN', 'Infinity', '70%', ''],
    AUTOSCALE_TOLERANCE: ['1', '-0.1', 'x', ''],
    AUTOSCALE_STABILIZATION_S: ['-1', '1e3', '60s', ''],
    AUTOSCALE_READY_TIMEOUT_S: ['0', '-5', 'soon', ''],
    AUTOSCALE_MIN_BATCHERS: ['0', '-1', '1.5', ''],
    AUTOSCALE_MAX_BATCHERS: ['0', 'many', ''],
    AUTOSCALE_MIN_PROXY_LEADERS: ['0', ' 2'],
    AUTOSCALE_MAX_PROXY_LEADERS: ['0', '3.0'],
    AUTOSCALE_MIN_UNBATCHERS: ['0', '0x2'],
    AUTOSCALE_MAX_UNBATCHERS: ['0', '1e2'],
    AUTOSCALE_MIN_ACCEPTOR_GROUPS: ['0', 'one'],
    AUTOSCALE_MAX_ACCEPTOR_GROUPS: ['0', '2.5', ''],
    AUTOSCALE_ACCEPTOR_GROUPS_STABILIZATION_S: ['-1', '5m', ''],
    CAPACITY_FILE: [''],
  };

  it('covers every setting in the table with bad values', () => {
    expect(Object.keys(BAD).sort()).toEqual(AUTOSCALER_SETTINGS.map((s) => s.name).sort());
  });

  for (const [name, values] of Object.entries(BAD)) {
    it.each(values)(`${name}=%j is refused with one line naming it`, (value) => {
      const err = errorOf({ [name]: value });
      expect(err).toBeInstanceOf(AutoscalerSettingsError);
      expect(err.message).not.toMatch(/\n/);
      expect(err.message.startsWith(`${name}: got ${JSON.stringify(value)}, expected `)).toBe(true);
      const info = AUTOSCALER_SETTINGS.find((s) => s.name === name);
      expect(err.message).toContain(info?.expected);
    });
  }

  it('keeps a value with a line break on one line', () => {
    expect(errorOf({ AUTOSCALE_TOLERANCE: '0.1\nAUTOSCALE_X=1' }).message).toBe(
      'AUTOSCALE_TOLERANCE: got "0.1\\nAUTOSCALE_X=1", expected a number in [0, 1)',
    );
  });

  it('refuses a min above the max, blaming the one that was given', () => {
    expect(errorOf({ AUTOSCALE_MIN_BATCHERS: '10' }).message).toBe(
      'AUTOSCALE_MIN_BATCHERS: got "10", expected an integer at most AUTOSCALE_MAX_BATCHERS (8)',
    );
    expect(errorOf({ AUTOSCALE_MIN_UNBATCHERS: '4', AUTOSCALE_MAX_UNBATCHERS: '3' }).message).toBe(
      'AUTOSCALE_MAX_UNBATCHERS: got "3", expected an integer at least AUTOSCALE_MIN_UNBATCHERS (4)',
    );
    // Acceptor groups' default maximum is 4.
    expect(errorOf({ AUTOSCALE_MIN_ACCEPTOR_GROUPS: '5' }).message).toBe(
      'AUTOSCALE_MIN_ACCEPTOR_GROUPS: got "5", expected an integer at most AUTOSCALE_MAX_ACCEPTOR_GROUPS (4)',
    );
    // 10 is within EC2's default maximum of 16.
    expect(
      parseAutoscalerSettings({ AUTOSCALE_MIN_PROXY_LEADERS: '10' }, 'ec2').bounds['proxy-leader'],
    ).toEqual({
      min: 10,
      max: 16,
    });
  });

  it("has a table whose defaults are the parser's", () => {
    for (const environment of ['local', 'ec2'] as const) {
      const fromTable = Object.fromEntries(
        AUTOSCALER_SETTINGS.map((s) => [s.name, environment === 'local' ? s.defaultLocal : s.defaultEc2]),
      );
      expect(parseAutoscalerSettings(fromTable, environment)).toEqual(
        parseAutoscalerSettings({}, environment),
      );
    }
    for (const s of AUTOSCALER_SETTINGS) expect(s.meaning.length).toBeGreaterThan(10);
  });
});

describe('policySettings', () => {
  it('joins the settings with the capacities into settings the policy accepts', () => {
    const settings = parseAutoscalerSettings({ AUTOSCALE_MAX_UNBATCHERS: '3' }, 'local');
    const capacity = {
      batcher: { messagesPerSecond: 100 },
      'proxy-leader': { messagesPerSecond: 200 },
      unbatcher: { messagesPerSecond: 300 },
      cpuQuota: 0.5,
    };
    const joined = policySettings(settings, capacity);
    expect(joined).toEqual({
      targetUtilization: 0.7,
      tolerance: 0.1,
      stabilizationWindowMs: 60_000,
      roleStabilizationWindowMs: { 'acceptor-group': 300_000 },
      readyTimeoutMs: 30_000,
      // No acceptor figure: acceptor groups have no capacity, so the policy does not scale them.
      capacity: {
        batcher: { messagesPerSecond: 100 },
        'proxy-leader': { messagesPerSecond: 200 },
        unbatcher: { messagesPerSecond: 300 },
      },
      bounds: {
        batcher: { min: 1, max: 8 },
        'proxy-leader': { min: 1, max: 8 },
        unbatcher: { min: 1, max: 3 },
        'acceptor-group': { min: 1, max: 4 },
      },
    });
    expect(() => new ScalingPolicy(joined)).not.toThrow();
    const withAcceptor = policySettings(settings, {
      ...capacity,
      'acceptor-group': { messagesPerSecond: 400 },
    });
    expect(withAcceptor.capacity['acceptor-group']).toEqual({ messagesPerSecond: 400 });
    expect(() => new ScalingPolicy(withAcceptor)).not.toThrow();
  });
});

describe('README', () => {
  it.each([
    ['the package README', '../README.md'],
    ["the repository's README", '../../../README.md'],
  ])('%s lists every setting with its defaults', (_, file) => {
    const readme = readFileSync(new URL(file, import.meta.url), 'utf8');
    for (const s of AUTOSCALER_SETTINGS) {
      expect(readme).toMatch(
        new RegExp(`\\| \`${s.name}\`\\s*\\| \`${s.defaultLocal}\`\\s*\\| \`${s.defaultEc2}\`\\s*\\|`),
      );
    }
  });
});
