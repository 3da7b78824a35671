import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { envLine, renderEnvFile, renderUserData, UserDataError } from '../src/user-data.ts';

const TRICKY: Record<string, string> = {
  ANNA_ROUTING: 'tcp://10.0.0.5:6450',
  SPACES: 'a value with  spaces',
  QUOTES: `it's "quoted"`,
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal ${...} must survive quoting
  DOLLAR: '$HOME and ${PATH}',
  BACKTICK: '`whoami`',
  BACKSLASH: 'C:\\path\\to\\',
  PIPES: 'a|b|c',
  UNICODE: 'Ünïcödé →',
  EMPTY: '',
};

/** Reads an env file back the way a shell does and returns the variables. */
function readBack(envText: string, keys: string[]): Record<string, string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'paxos-env-'));
  try {
    const file = path.join(dir, 'env');
    writeFileSync(file, envText);
    const script = `set -a; . "${file}"; ${keys.map((k) => `printf '%s\\0' "$${k}"`).join('; ')}`;
    const out = spawnSync('bash', ['-c', script], { encoding: 'utf8', env: {} });
    const values = out.stdout.split('\0');
    return Object.fromEntries(keys.map((k, i) => [k, values[i] as string]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('user-data', () => {
  it('quotes every value so a shell (and systemd) reads back exactly what was written', () => {
    const keys = Object.keys(TRICKY);
    expect(readBack(renderEnvFile(TRICKY), keys)).toEqual(TRICKY);
  });

  it('rejects names and values that cannot be written, naming them', () => {
    expect(() => envLine('lower', 'x')).toThrow(
      new UserDataError('environment variable name "lower" is not valid: expected [A-Z_][A-Z0-9_]*'),
    );
    expect(() => envLine('BAD', 'two\nlines')).toThrow(/value of BAD contains a newline or NUL/);
  });

  it('renders a bash script that writes the env file verbatim and starts the role as a service', () => {
    const script = renderUserData({ role: 'proxy-leader', env: { ...TRICKY, PAXOS_ENV: 'x' } });
    expect(spawnSync('bash', ['-n', '-c', script]).status).toBe(0);
    expect(script).toContain('ExecStart=/usr/bin/node /opt/paxos/apps/proxy-leader/dist/main.js');
    expect(script).toContain('systemctl enable --now paxos-proxy-leader.service');
    expect(script).toContain('EnvironmentFile=/etc/paxos/proxy-leader.env');
    // Not root: the paxos user of the AMI, writing only its state directory.
    expect(script).toMatch(/^User=paxos$/m);
    expect(script).toMatch(/^StateDirectory=paxos$/m);
    expect(script).toMatch(/^ProtectSystem=strict$/m);
    // The heredoc copies the env file unchanged: extract it and read it back.
    const match = /cat > \/etc\/paxos\/proxy-leader\.env <<'(\w+)'\n([\s\S]*?)\n\1\n/.exec(script);
    expect(match).not.toBeNull();
    const body = `${match?.[2] ?? ''}\n`;
    expect(body).toBe(renderEnvFile({ ...TRICKY, PAXOS_ENV: 'x' }));
    expect(readBack(body, ['QUOTES', 'DOLLAR'])).toEqual({ QUOTES: TRICKY.QUOTES, DOLLAR: TRICKY.DOLLAR });
  });

  it('starts the directory with its arguments; PRIVATE_IP is left for systemd to expand', () => {
    const script = renderUserData({
      role: 'directory',
      env: {},
      // biome-ignore lint/suspicious/noTemplateCurlyInString: systemd expands it on the instance
      args: ['--host', '0.0.0.0', '--public-host', '${PRIVATE_IP}'],
    });
    expect(script).toContain(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: systemd expands it on the instance
      'ExecStart=/usr/bin/node /opt/paxos/packages/anna-client/dist/server-cli.js --host 0.0.0.0 --public-host ${PRIVATE_IP}',
    );
    expect(spawnSync('bash', ['-n', '-c', script]).status).toBe(0);
  });

  it('rejects an argument systemd would split or expand, naming it', () => {
    expect(() => renderUserData({ role: 'batcher', env: {}, args: ['--x', 'two words'] })).toThrow(
      /argument "two words" of batcher is not safe in a systemd ExecStart line/,
    );
    expect(() => renderUserData({ role: 'batcher', env: {}, args: ['$HOME'] })).toThrow(UserDataError);
  });

  it.each(['directory', 'acceptor', 'proposer', 'batcher', 'proxy-leader', 'unbatcher'] as const)(
    'writes a %s unit that systemd-analyze verify accepts without a warning',
    (role) => {
      const script = renderUserData({
        role,
        env: { ANNA_ROUTING: 'tcp://10.0.0.5:6450' },
        // biome-ignore lint/suspicious/noTemplateCurlyInString: systemd expands it on the instance
        args: role === 'directory' ? ['--host', '0.0.0.0', '--public-host', '${PRIVATE_IP}'] : [],
        nodePath: process.execPath,
      });
      const unit = /<<'PAXOS_UNIT'\n([\s\S]*?)\nPAXOS_UNIT\n/.exec(script)?.[1];
      expect(unit).toBeDefined();
      const dir = mkdtempSync(path.join(tmpdir(), 'paxos-unit-'));
      try {
        const file = path.join(dir, `paxos-${role}.service`);
        writeFileSync(file, `${unit}\n`);
        const out = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
        expect(out.error, 'systemd-analyze is missing: run scripts/setup-system.sh').toBeUndefined();
        expect(out.stderr).toBe('');
        expect(out.status).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
