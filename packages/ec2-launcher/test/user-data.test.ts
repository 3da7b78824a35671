import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LAUNCH_STAGES } from '../src/cluster.ts';
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

/** Writes each `[file name, unit text]` to a temporary directory and has systemd-analyze verify them together. */
function verifyUnits(units: readonly (readonly [string, string | undefined])[]): void {
  const dir = mkdtempSync(path.join(tmpdir(), 'paxos-unit-'));
  try {
    const files = units.map(([name, text]) => {
      expect(text, name).toBeDefined();
      const file = path.join(dir, name);
      writeFileSync(file, `${text}\n`);
      return file;
    });
    const out = spawnSync('systemd-analyze', ['verify', ...files], { encoding: 'utf8' });
    expect(out.error, 'systemd-analyze is missing: run scripts/setup-system.sh').toBeUndefined();
    expect(out.stderr).toBe('');
    expect(out.status).toBe(0);
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

  // Every role of a cluster (the last stage is the load generators).
  it.each(LAUNCH_STAGES.slice(0, -1).flat())(
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

  /** How an acceptor and a matchmaker start: state directory, the file its first start creates, the state variable. */
  const STATEFUL = {
    acceptor: {
      env: { ACCEPTOR_GROUP_ID: '0', ACCEPTOR_ID: '1' },
      dir: 'run1--g0-a1',
      file: '000000000000.seg',
      key: 'ACCEPTOR_LOG_STATE',
      what: 'log',
    },
    matchmaker: {
      env: { MATCHMAKER_ID: '2', F: '1', ACCEPTOR_GROUPS: '2' },
      dir: 'run1--m2',
      file: 'matchmaker',
      key: 'MATCHMAKER_STATE',
      what: 'state',
    },
  } as const;
  type Stateful = keyof typeof STATEFUL;

  /** The env of `role` as a plan gives it, DATA_DIR `dataDir`, its state variable `new`. */
  const statefulEnv = (role: Stateful, dataDir: string): Record<string, string> => ({
    ANNA_ROUTING: 'tcp://10.0.0.5:6450',
    ANNA_KEY_PREFIX: 'run1-',
    ...STATEFUL[role].env,
    DATA_DIR: dataDir,
    [STATEFUL[role].key]: 'new',
  });

  /**
   * Runs the part of `role`'s script after `systemctl enable --now` against an env file in `dir`
   * (as the script left it, PRIVATE_IP appended), calling `meanwhile` once it runs.
   */
  async function afterStart(role: Stateful, dir: string, waitS: number, meanwhile: () => void) {
    const dataDir = path.join(dir, 'data');
    const envFile = path.join(dir, `${role}.env`);
    const script = renderUserData({
      role,
      env: statefulEnv(role, dataDir),
      restartEnv: { [STATEFUL[role].key]: 'existing' },
      firstStartWaitS: waitS,
    });
    const started = `systemctl enable --now paxos-${role}.service\n`;
    const tail = script.slice(script.indexOf(started) + started.length);
    expect(tail.startsWith('# First start only')).toBe(true);
    writeFileSync(envFile, `${renderEnvFile(statefulEnv(role, dataDir))}PRIVATE_IP="10.0.0.9"\n`, {
      mode: 0o600,
    });
    const child = spawn(
      'bash',
      ['-euo', 'pipefail', '-c', tail.replaceAll(`/etc/paxos/${role}.env`, envFile)],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += String(d);
    });
    meanwhile();
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    return { code, stderr, env: readFileSync(envFile, 'utf8'), mode: statSync(envFile).mode & 0o777 };
  }

  describe.each(['acceptor', 'matchmaker'] as const)("a %s's first start", (role) => {
    const { dir: stateDir, file, key, what } = STATEFUL[role];

    it(`says existing in the env file once the first start has created its ${what}, changing nothing else`, async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'paxos-first-start-'));
      try {
        const result = await afterStart(role, dir, 10, () => {
          setTimeout(() => {
            mkdirSync(path.join(dir, 'data', stateDir), { recursive: true });
            writeFileSync(path.join(dir, 'data', stateDir, file), '');
          }, 300);
        });
        expect(result).toMatchObject({ code: 0, stderr: '', mode: 0o600 });
        const dataDir = path.join(dir, 'data');
        expect(result.env).toBe(
          `${renderEnvFile({ ...statefulEnv(role, dataDir), [key]: 'existing' })}PRIVATE_IP="10.0.0.9"\n`,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it(`leaves the env file as it is, and says so, when no ${what} appears in time`, async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'paxos-first-start-'));
      try {
        const result = await afterStart(role, dir, 0.4, () => {});
        expect(result.code).toBe(0);
        expect(result.env).toContain(`${key}="new"`);
        expect(result.stderr).toBe(
          `paxos-${role}: no ${what} in ${dir}/data/${stateDir} after 0.4 s: ${path.join(dir, `${role}.env`)} keeps its first-start settings\n`,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('is written only for an acceptor or a matchmaker, with plain values of variables it starts with', () => {
      const env = statefulEnv(role, '/var/lib/paxos');
      const script = renderUserData({ role, env, restartEnv: { [key]: 'existing' } });
      expect(spawnSync('bash', ['-n', '-c', script]).status).toBe(0);
      expect(script).toContain(
        `compgen -G '/var/lib/paxos/${stateDir}/${role === 'acceptor' ? '*.seg' : 'matchmaker'}'`,
      );
      expect(script).toContain(`sed -i -e 's|^${key}=.*$|${key}="existing"|' /etc/paxos/${role}.env`);
      // Without restartEnv (every other role) the script ends with the start.
      expect(renderUserData({ role, env })).toMatch(
        new RegExp(`systemctl enable --now paxos-${role}.service\n$`),
      );
      expect(() => renderUserData({ role: 'batcher', env: {}, restartEnv: { [key]: 'existing' } })).toThrow(
        /restartEnv of batcher: only an acceptor's or a matchmaker's is written/,
      );
      // Without its identity there is no state directory to watch.
      expect(() =>
        renderUserData({ role, env: { [key]: 'new' }, restartEnv: { [key]: 'existing' } }),
      ).toThrow(new RegExp(`restartEnv of ${role}: only an acceptor's or a matchmaker's is written`));
      expect(() => renderUserData({ role, env, restartEnv: { OTHER: 'x' } })).toThrow(
        `restartEnv's OTHER is not in the env of ${role}`,
      );
      expect(() => renderUserData({ role, env, restartEnv: { [key]: "it's" } })).toThrow(
        /is not safe in the boot script/,
      );
    });
  });

  describe("a replacement matchmaker's first start (no state until the leader bootstraps it)", () => {
    const env = { ...statefulEnv('matchmaker', '/var/lib/paxos'), MATCHMAKER_STATE: 'replacement' };
    const script = renderUserData({
      role: 'matchmaker',
      env,
      restartEnv: { MATCHMAKER_STATE: 'existing' },
      nodePath: process.execPath,
    });
    const between = (tag: string) => new RegExp(`<<'${tag}'\\n([\\s\\S]*?)\\n${tag}\\n`).exec(script)?.[1];

    it('waits for the state with a path unit, without a time limit, instead of the bounded loop', () => {
      expect(spawnSync('bash', ['-n', '-c', script]).status).toBe(0);
      expect(script).not.toContain('# First start only');
      expect(script).not.toContain('compgen');
      expect(between('PAXOS_STATE_PATH')).toContain('\nPathExistsGlob=/var/lib/paxos/run1--m2/matchmaker\n');
      expect(between('PAXOS_STATE_UNIT')).toContain('\nExecStart=/bin/sh /etc/paxos/matchmaker-state.sh');
      expect(script).toMatch(
        /systemctl enable --now paxos-matchmaker\.service\n[\s\S]*systemctl enable --now paxos-matchmaker-state\.path\n$/,
      );
      // A matchmaker started new (one of `up`'s) keeps the bounded loop: its state comes at once.
      expect(
        renderUserData({
          role: 'matchmaker',
          env: statefulEnv('matchmaker', '/var/lib/paxos'),
          restartEnv: { MATCHMAKER_STATE: 'existing' },
        }),
      ).toContain('# First start only');
    });

    it('writes existing into the env file once run, and starts the role again if it was refused meanwhile', () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'paxos-state-watch-'));
      try {
        const envFile = path.join(dir, 'matchmaker.env');
        const calls = path.join(dir, 'calls');
        writeFileSync(envFile, `${renderEnvFile(env)}PRIVATE_IP="10.0.0.9"\n`, { mode: 0o600 });
        mkdirSync(path.join(dir, 'bin'));
        // A systemctl that says the role failed (a restart refused: state there, env saying replacement).
        writeFileSync(path.join(dir, 'bin', 'systemctl'), `#!/bin/sh\necho "$*" >> ${calls}\n`, {
          mode: 0o755,
        });
        const helper = (between('PAXOS_STATE_SCRIPT') ?? '').replaceAll('/etc/paxos/matchmaker.env', envFile);
        const out = spawnSync('/bin/sh', ['-c', helper], {
          encoding: 'utf8',
          env: { PATH: `${path.join(dir, 'bin')}:/usr/bin:/bin` },
        });
        expect(out.stderr).toBe('');
        expect(out.status).toBe(0);
        expect(readFileSync(envFile, 'utf8')).toBe(
          `${renderEnvFile({ ...env, MATCHMAKER_STATE: 'existing' })}PRIVATE_IP="10.0.0.9"\n`,
        );
        expect(readFileSync(calls, 'utf8')).toBe(
          'is-failed --quiet paxos-matchmaker.service\nrestart paxos-matchmaker.service\n',
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('writes units systemd-analyze verify accepts without a warning', () => {
      verifyUnits([
        ['paxos-matchmaker.service', between('PAXOS_UNIT')],
        ['paxos-matchmaker-state.service', between('PAXOS_STATE_UNIT')],
        ['paxos-matchmaker-state.path', between('PAXOS_STATE_PATH')],
      ]);
    });
  });

  it('every unit leaves a process that exits 2 (a refused configuration) stopped', () => {
    for (const role of ['acceptor', 'matchmaker', 'batcher'] as const)
      expect(renderUserData({ role, env: {} })).toMatch(
        /^Restart=always\nRestartSec=1\n#.*\nRestartPreventExitStatus=2$/m,
      );
  });

  describe('the archive of DATA_DIR at shutdown (AWS_S3_BUCKET)', () => {
    const env = {
      DATA_DIR: '/var/lib/paxos',
      ACCEPTOR_GROUP_ID: '1',
      ACCEPTOR_ID: '2',
      ACCEPTOR_LOG_STATE: 'new',
    };
    const archive = { bucket: 'paxos-archive.example', key: 'demo/acceptor-g1-a2' };
    const unitOf = (script: string) =>
      /<<'PAXOS_ARCHIVE_UNIT'\n([\s\S]*?)\nPAXOS_ARCHIVE_UNIT\n/.exec(script)?.[1];

    it('writes a oneshot that uploads DATA_DIR when stopped, after the role, enabled before it', () => {
      const script = renderUserData({
        role: 'acceptor',
        env,
        restartEnv: { ACCEPTOR_LOG_STATE: 'existing' },
        archive,
      });
      const unit = unitOf(script);
      expect(unit).toContain('Before=paxos-acceptor.service\n');
      expect(unit).toContain('After=network-online.target\n');
      expect(unit).toContain('RemainAfterExit=yes\n');
      expect(unit).toContain(
        'ExecStop=/bin/sh -c \'command -v aws >/dev/null || { echo "paxos-archive: no aws CLI on this image: /var/lib/paxos is not archived to s3://paxos-archive.example/demo/acceptor-g1-a2/" >&2; exit 1; }; exec aws s3 cp --recursive --only-show-errors /var/lib/paxos s3://paxos-archive.example/demo/acceptor-g1-a2/\'',
      );
      expect(script.indexOf('systemctl enable --now paxos-archive.service')).toBeLessThan(
        script.indexOf('systemctl enable --now paxos-acceptor.service'),
      );
      expect(renderUserData({ role: 'acceptor', env })).not.toContain('paxos-archive');
    });

    it('runs `aws s3 cp --recursive DATA_DIR s3://<bucket>/<cluster>/<name>/` on stop, and says so without the aws CLI', () => {
      const unit = unitOf(renderUserData({ role: 'acceptor', env, archive })) ?? '';
      const command = /^ExecStop=\/bin\/sh -c '(.*)'$/m.exec(unit)?.[1] ?? '';
      const dir = mkdtempSync(path.join(tmpdir(), 'paxos-archive-'));
      try {
        const calls = path.join(dir, 'calls');
        mkdirSync(path.join(dir, 'bin'));
        writeFileSync(path.join(dir, 'bin', 'aws'), `#!/bin/sh\nprintf '%s\\n' "$@" > ${calls}\n`, {
          mode: 0o755,
        });
        const withAws = spawnSync('/bin/sh', ['-c', command], {
          encoding: 'utf8',
          env: { PATH: `${path.join(dir, 'bin')}:/usr/bin:/bin` },
        });
        expect(withAws.status).toBe(0);
        expect(readFileSync(calls, 'utf8').split('\n')).toEqual([
          's3',
          'cp',
          '--recursive',
          '--only-show-errors',
          '/var/lib/paxos',
          's3://paxos-archive.example/demo/acceptor-g1-a2/',
          '',
        ]);
        const withoutAws = spawnSync('/bin/sh', ['-c', command], {
          encoding: 'utf8',
          env: { PATH: '/nonexistent' },
        });
        expect(withoutAws.status).toBe(1);
        expect(withoutAws.stderr).toBe(
          'paxos-archive: no aws CLI on this image: /var/lib/paxos is not archived to s3://paxos-archive.example/demo/acceptor-g1-a2/\n',
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('writes a unit systemd-analyze verify accepts without a warning', () => {
      const script = renderUserData({ role: 'acceptor', env, archive, nodePath: process.execPath });
      verifyUnits([
        ['paxos-acceptor.service', /<<'PAXOS_UNIT'\n([\s\S]*?)\nPAXOS_UNIT\n/.exec(script)?.[1]],
        ['paxos-archive.service', unitOf(script)],
      ]);
    });

    it('refuses a bucket, key or DATA_DIR it cannot write safely, naming it', () => {
      expect(() =>
        renderUserData({ role: 'acceptor', env, archive: { ...archive, bucket: 'My_Bucket' } }),
      ).toThrow('S3 bucket "My_Bucket" is not valid: expected 3-63 lower-case letters, digits, . and -');
      expect(() => renderUserData({ role: 'acceptor', env, archive: { ...archive, key: "a'b" } })).toThrow(
        `S3 key "a'b" is not valid: expected letters, digits, ._- and /`,
      );
      expect(() => renderUserData({ role: 'batcher', env: {}, archive })).toThrow(
        'archive of batcher: expected a DATA_DIR of letters, digits and ._/- in its env, got none',
      );
    });
  });
});
