import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
// No credentials, no config files, and no metadata service: nothing here may reach AWS.
const HOME = mkdtempSync(path.join(tmpdir(), 'paxos-aws-home-'));
afterAll(() => rmSync(HOME, { recursive: true, force: true }));

function run(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME, AWS_EC2_METADATA_DISABLED: 'true', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.trim() };
}

const LAUNCH = ['--ami', 'ami-0abcdef1234567890', '--security-group', 'sg-0123456789abcdef0'];

/** The RunInstances requests a dry run printed. */
function runInstances(stdout: string) {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('[dry run] ec2:RunInstances '))
    .map((l) => JSON.parse(l.slice('[dry run] ec2:RunInstances '.length)));
}

/** The value of tag `key` of a printed RunInstances request. */
const tag = (request: { TagSpecifications: { Tags: { Key: string; Value: string }[] }[] }, key: string) =>
  request.TagSpecifications[0]?.Tags.find((t) => t.Key === key)?.Value;

describe('paxos-aws', () => {
  it('up --dry-run prints every EC2 call of a whole cluster in launch order, without credentials', () => {
    const r = run(['up', '--dry-run', ...LAUNCH, '--cluster', 'ci', '--key-prefix', 'ci-1-']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const runs = runInstances(r.stdout);
    const names = runs.map((i) => tag(i, 'Name'));
    expect(names).toEqual([
      'ci_directory',
      'ci_acceptor-g0-a0',
      'ci_acceptor-g0-a1',
      'ci_acceptor-g0-a2',
      'ci_acceptor-g1-a0',
      'ci_acceptor-g1-a1',
      'ci_acceptor-g1-a2',
      'ci_matchmaker-0',
      'ci_matchmaker-1',
      'ci_matchmaker-2',
      'ci_proxy-leader-0',
      'ci_proxy-leader-1',
      'ci_unbatcher-0',
      'ci_unbatcher-1',
      'ci_proposer-0',
      'ci_proposer-1',
      'ci_batcher-0',
      'ci_batcher-1',
    ]);
    expect(runs.every((i) => i.InstanceInitiatedShutdownBehavior === 'terminate')).toBe(true);
    expect(runs[1].UserData).toContain('ANNA_ROUTING="tcp://10.0.0.5:6450"');
    expect(r.stdout).toMatch(/cluster ci is up: 18 instances\n$/);
  });

  it('up --dry-run plans 2f+1 matchmakers, ids 0..2f on port 15000, started new and switched to existing', () => {
    const r = run(['up', '--dry-run', ...LAUNCH, '--cluster', 'ci', '--key-prefix', 'ci-1-', '--f', '2']);
    expect(r.code).toBe(0);
    const matchmakers = runInstances(r.stdout).filter((i) => tag(i, 'paxos:role') === 'matchmaker');
    expect(matchmakers.map((i) => [tag(i, 'Name'), tag(i, 'paxos:name')])).toEqual(
      [0, 1, 2, 3, 4].map((id) => [`ci_matchmaker-${id}`, `matchmaker-${id}`]),
    );
    for (const [id, m] of matchmakers.entries()) {
      expect(m.InstanceInitiatedShutdownBehavior).toBe('terminate');
      expect(tag(m, 'paxos:cluster')).toBe('ci');
      expect(tag(m, 'paxos:settings')).toMatch(/^f=2 groups=2 /);
      for (const env of [
        'ExecStart=/usr/bin/node /opt/paxos/apps/matchmaker/dist/main.js;',
        `MATCHMAKER_ID="${id}"`,
        'MATCHMAKER_PORT="15000"',
        'MATCHMAKER_STATE="new"',
        'DATA_DIR="/var/lib/paxos"',
        'F="2"',
        'ACCEPTOR_GROUPS="2"',
        `INSTANCE="matchmaker-${id}"`,
        'ANNA_ROUTING="tcp://10.0.0.5:6450"',
        '; after the first start: MATCHMAKER_STATE=existing>',
      ])
        expect(m.UserData).toContain(env);
    }
    // Launched with the acceptors, before the proposers that wait for them.
    const order = r.stdout.split('\n').filter((l) => l.startsWith('launching '));
    expect(order[1]).toMatch(/^launching acceptor-g0-a0, .*acceptor-g1-a4, matchmaker-0, .*, matchmaker-4$/);
    expect(r.stdout).toMatch(/cluster ci is up: 24 instances\n$/);
  });

  it('says which region (exit 2, a missing setting) and credentials (exit 1) are missing, in one line', () => {
    const noRegion = run(['status']);
    expect(noRegion).toMatchObject({
      code: 2,
      stderr: 'error: no AWS region: set AWS_REGION or pass --region (e.g. us-west-1)',
    });
    const noCredentials = run(['status'], { AWS_REGION: 'us-west-1' });
    expect(noCredentials.code).toBe(1);
    expect(noCredentials.stderr).toMatch(
      /^error: DescribeInstances: no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/,
    );
    expect(noCredentials.stderr.split('\n')).toHaveLength(1);
  });

  it('names a missing AMI and bad flags before calling EC2', () => {
    expect(run(['up', '--dry-run', '--security-group', 'sg-0123456789abcdef0'])).toMatchObject({
      code: 2,
      stderr: 'error: no AMI: pass --ami ami-… or set AWS_AMI (build one with infra/ami/build-ami.sh)',
      stdout: '',
    });
    // Its own flag names, not the settings' fields (imageId), and exit 2.
    expect(
      run(['up', '--dry-run', '--ami', 'ubuntu', '--security-group', 'sg-0123456789abcdef0']),
    ).toMatchObject({
      code: 2,
      stderr: 'error: --ami must be ami- followed by 8 or 17 hex digits, got "ubuntu"',
      stdout: '',
    });
    expect(run(['up', '--dry-run', ...LAUNCH, '--security-group', 'default']).stderr).toBe(
      'error: --security-group must be sg- followed by hex digits, got "default"',
    );
    // --log-level is checked before anything is launched, as every other flag.
    const verbose = run(['up', '--dry-run', ...LAUNCH, '--log-level', 'verbose']);
    expect(verbose).toMatchObject({ code: 2, stdout: '' });
    expect(verbose.stderr).toMatch(
      /^error: .*--log-level must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"$/,
    );
    expect(run(['scale', 'acceptor', '3', '--dry-run'])).toMatchObject({ code: 2, stdout: '' });
    expect(run(['scale', 'acceptor', '3', '--dry-run']).stderr).toMatch(
      /^error: .*'acceptor'.*acceptors do not scale by count: change the number of acceptor groups with `scale acceptor-groups <N>`, or replace one acceptor with `replace <acceptor>`$/,
    );
    expect(run(['scale', 'router', '3', '--dry-run']).stderr).toMatch(
      /role router cannot be scaled: expected one of proposer, batcher, proxy-leader, unbatcher$/,
    );
    expect(run(['up', '--f', 'x'])).toMatchObject({ code: 2 });
    expect(run(['up', '--f', 'x']).stderr).toBe(
      `error: option '--f <n>' argument 'x' is invalid. --f must be an integer >= 0, got "x"`,
    );
  });

  it('refuses to scale matchmakers, in one line that says what to do instead, before calling EC2', () => {
    const r = run(['scale', 'matchmaker', '5', '--dry-run', ...LAUNCH]);
    expect(r).toMatchObject({ code: 2, stdout: '' });
    expect(r.stderr.split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(
      /^error: .*'matchmaker'.*matchmakers do not scale by count: the set is 2f\+1; replace one with `replace matchmaker-<id>`, or for another size `down` and `up --f <f>` a new cluster$/,
    );
  });

  it('refuses a bad number of acceptor groups and an acceptor reconfiguration without Prometheus, exit 2, before calling EC2', () => {
    for (const [args, stderr] of [
      [['scale', 'acceptor-groups', '0'], 'error: acceptor-groups must be an integer >= 1, got "0"'],
      [
        ['scale', 'acceptor-groups', 'two'],
        `error: command-argument value 'two' is invalid for argument 'count'. <count> must be an integer >= 0, got "two"`,
      ],
      [
        ['replace', 'acceptor-g1-a2', ...LAUNCH],
        'error: no Prometheus: pass --prometheus-url http://<prometheus>:9090 or set PROMETHEUS_URL (the one scraping the cluster with infra/prometheus/prometheus-ec2.yml; it tells when a leader serves the new configuration)',
      ],
      [
        ['scale', 'acceptor-groups', '3', '--prometheus-url', 'prometheus:9090'],
        `error: option '--prometheus-url <url>' argument 'prometheus:9090' is invalid. --prometheus-url must be an http(s) URL such as http://10.0.0.9:9090, got "prometheus:9090"`,
      ],
    ] as const)
      expect(run([...args]), args.join(' ')).toEqual({ code: 2, stdout: '', stderr });
  });

  it('status and down --dry-run on an empty cluster', () => {
    expect(run(['status', '--dry-run'])).toMatchObject({ code: 0 });
    expect(run(['status', '--dry-run']).stdout).toContain('no instances');
    expect(run(['down', '--dry-run']).stdout).toContain('nothing to terminate');
  });

  it('status -o json is one JSON document on stdout; --version prints the version; a bad -o exits 2', () => {
    for (const flag of [['-o', 'json'], ['--json']]) {
      const r = run(['status', '--dry-run', ...flag]);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ instances: [], counts: {} });
      expect(r.stderr).toMatch(/\[dry run\] ec2:DescribeInstances/);
    }
    expect(run(['--version'])).toMatchObject({ code: 0, stdout: '0.1.0\n' });
    const bad = run(['status', '--dry-run', '-o', 'yaml']);
    expect(bad).toMatchObject({ code: 2, stdout: '' });
    expect(bad.stderr).toMatch(/-o\/--output must be text or json, got "yaml"/);
  });
});
