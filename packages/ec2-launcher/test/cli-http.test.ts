import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeEc2 } from './fake-ec2.ts';

/**
 * The built CLI with the real AWS SDK client (signing, Query API encoding, XML parsing, error
 * codes from response bodies) against a stand-in EC2 endpoint on 127.0.0.1.
 */
const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const HOME = mkdtempSync(path.join(tmpdir(), 'paxos-aws-http-'));
const ec2 = new FakeEc2();
let endpoint = '';
beforeAll(async () => {
  endpoint = await ec2.start();
});
afterAll(async () => {
  await ec2.stop();
  rmSync(HOME, { recursive: true, force: true });
});

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args, '--cluster', 'http'],
      {
        env: {
          PATH: process.env.PATH ?? '',
          HOME,
          AWS_ENDPOINT_URL_EC2: endpoint,
          AWS_REGION: 'us-west-1',
          AWS_ACCESS_KEY_ID: 'AKIDPAXOSTEST',
          AWS_SECRET_ACCESS_KEY: 'not-a-real-secret',
          AWS_EC2_METADATA_DISABLED: 'true',
        },
        timeout: 60_000,
      },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr: stderr.trim() });
      },
    );
  });
}

const LAUNCH = ['--ami', 'ami-0abcdef1234567890', '--security-group', 'sg-0123456789abcdef0'];
const runs = () => ec2.requests.filter((r) => r.action === 'RunInstances');
const tag = (p: URLSearchParams, key: string) => {
  for (let i = 1; p.has(`TagSpecification.1.Tag.${i}.Key`); i++) {
    if (p.get(`TagSpecification.1.Tag.${i}.Key`) === key) return p.get(`TagSpecification.1.Tag.${i}.Value`);
  }
  return null;
};

describe('paxos-aws over HTTP with the real SDK client', () => {
  it('up sends signed RunInstances requests with every parameter, in launch order', async () => {
    const r = await run([
      'up',
      ...LAUNCH,
      '--instance-profile',
      'paxos-instance',
      '--groups',
      '1',
      '--proposers',
      '1',
      '--batchers',
      '1',
      '--proxy-leaders',
      '1',
      '--unbatchers',
      '1',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('cluster http is up: 11 instances');
    expect(runs().map((q) => tag(q.params, 'paxos:name'))).toEqual([
      'directory',
      'acceptor-g0-a0',
      'acceptor-g0-a1',
      'acceptor-g0-a2',
      'matchmaker-0',
      'matchmaker-1',
      'matchmaker-2',
      'proxy-leader-0',
      'unbatcher-0',
      'proposer-0',
      'batcher-0',
    ]);
    const first = runs()[0]?.params as URLSearchParams;
    expect(
      Object.fromEntries(
        [...first].filter(([k]) => !/^(UserData|ClientToken|TagSpecification|Version)/.test(k)),
      ),
    ).toEqual({
      Action: 'RunInstances',
      ImageId: 'ami-0abcdef1234567890',
      InstanceType: 'm5.2xlarge',
      MinCount: '1',
      MaxCount: '1',
      'SecurityGroupId.1': 'sg-0123456789abcdef0',
      'IamInstanceProfile.Name': 'paxos-instance',
      InstanceInitiatedShutdownBehavior: 'terminate',
      'MetadataOptions.HttpTokens': 'required',
      'MetadataOptions.HttpEndpoint': 'enabled',
    });
    expect(first.get('TagSpecification.1.ResourceType')).toBe('instance');
    expect(first.get('TagSpecification.2.ResourceType')).toBe('volume');
    expect(tag(first, 'Name')).toBe('http_directory');
    expect(Buffer.from(first.get('UserData') ?? '', 'base64').toString()).toContain(
      'paxos-directory.service',
    );
    // Signed with SigV4 for EC2 in the region, by the SDK.
    expect(runs()[0]?.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDPAXOSTEST\/\d{8}\/us-west-1\/ec2\/aws4_request, SignedHeaders=.*, Signature=[0-9a-f]{64}$/,
    );
    const acceptor = Buffer.from(runs()[1]?.params.get('UserData') ?? '', 'base64').toString();
    expect(acceptor).toContain('ANNA_ROUTING="tcp://10.9.0.1:6450"');
    // Votes are synced to the instance's disk before they are answered.
    expect(acceptor).toContain('DATA_FSYNC="true"');
    // The first boot creates the log; once it is there, every later start must find it.
    expect(acceptor).toContain('ACCEPTOR_LOG_STATE="new"');
    expect(acceptor).toContain(`s|^ACCEPTOR_LOG_STATE=.*$|ACCEPTOR_LOG_STATE="existing"|`);
    expect(acceptor).toMatch(/^RestartPreventExitStatus=2$/m);
    // Matchmakers likewise: their genesis state at the first boot, then existing.
    const matchmaker = Buffer.from(runs()[4]?.params.get('UserData') ?? '', 'base64').toString();
    expect(tag(runs()[4]?.params as URLSearchParams, 'paxos:role')).toBe('matchmaker');
    expect(matchmaker).toContain('MATCHMAKER_ID="0"');
    expect(matchmaker).toContain('MATCHMAKER_STATE="new"');
    expect(matchmaker).toContain(`s|^MATCHMAKER_STATE=.*$|MATCHMAKER_STATE="existing"|`);
    expect(matchmaker).toMatch(/^RestartPreventExitStatus=2$/m);
  });

  it('status lists the instances from the XML answer', async () => {
    const r = await run(['status']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^directory\s+directory\s+i-fake00000001\s+running\s+10\.9\.0\.1\s/m);
    expect(r.stdout).toContain(
      'directory 1, acceptor 3, matchmaker 3, proxy-leader 1, unbatcher 1, proposer 1, batcher 1',
    );
  });

  it('retries RunInstances throttled by EC2 (503 RequestLimitExceeded) with the same ClientToken', async () => {
    const before = runs().length;
    ec2.failNext('RunInstances', 503, 'RequestLimitExceeded', 'Request limit exceeded.');
    ec2.failNext('RunInstances', 503, 'RequestLimitExceeded', 'Request limit exceeded.');
    const r = await run(['scale', 'batcher', '2', ...LAUNCH]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const attempts = runs().slice(before);
    expect(attempts).toHaveLength(3);
    expect(new Set(attempts.map((a) => a.params.get('ClientToken'))).size).toBe(1);
    expect(attempts.map((a) => tag(a.params, 'paxos:name'))).toEqual(['batcher-1', 'batcher-1', 'batcher-1']);
    expect(ec2.instances.filter((i) => i.tags.get('paxos:role') === 'batcher')).toHaveLength(2);
  });

  it('turns EC2 error responses into one line each, exit 1', async () => {
    ec2.failNext(
      'RunInstances',
      400,
      'InvalidAMIID.NotFound',
      "The image id '[ami-0abcdef1234567890]' does not exist",
    );
    const badAmi = await run(['scale', 'batcher', '3', ...LAUNCH]);
    expect(badAmi.code).toBe(1);
    expect(badAmi.stderr).toMatch(
      /^error: RunInstances: AMI "ami-0abcdef1234567890" cannot be used in us-west-1 \(InvalidAMIID.NotFound\): expected the id/,
    );
    expect(badAmi.stderr.split('\n')).toHaveLength(1);

    ec2.failNext(
      'DescribeInstances',
      401,
      'AuthFailure',
      'AWS was not able to validate the provided access credentials',
    );
    const auth = await run(['status']);
    expect(auth).toMatchObject({ code: 1 });
    expect(auth.stderr).toMatch(/^error: DescribeInstances: AWS rejected the credentials \(AuthFailure\)/);

    for (let i = 0; i < 5; i++)
      ec2.failNext('DescribeInstances', 503, 'RequestLimitExceeded', 'Request limit exceeded.');
    const throttled = await run(['status']);
    expect(throttled.code).toBe(1);
    expect(throttled.stderr).toBe(
      'error: DescribeInstances: EC2 kept throttling the request (RequestLimitExceeded) after 5 attempts with back-off: wait a minute and run it again, or launch fewer instances at once (--concurrency)',
    );
  });

  it('down terminates every instance, batchers first and the directory last', async () => {
    const before = ec2.requests.length;
    const r = await run(['down', '--drain-seconds', '0']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('terminated 12 instances');
    const byId = new Map(ec2.instances.map((i) => [i.id, i.tags.get('paxos:role')]));
    const stages = ec2.requests
      .slice(before)
      .filter((q) => q.action === 'TerminateInstances')
      .map((q) =>
        [
          ...new Set(
            [...q.params].filter(([k]) => k.startsWith('InstanceId.')).map(([, id]) => byId.get(id)),
          ),
        ].sort(),
      );
    expect(stages).toEqual([
      ['batcher'],
      ['proposer'],
      ['proxy-leader', 'unbatcher'],
      ['acceptor', 'matchmaker'],
      ['directory'],
    ]);
    expect(ec2.instances.every((i) => i.state === 'terminated')).toBe(true);
  });
});
