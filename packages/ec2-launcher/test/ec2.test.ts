import {
  DescribeInstancesCommand,
  EC2Client,
  EC2ServiceException,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import type { ProcessSpec } from '@paxos/launcher';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  createEc2Client,
  Ec2ConfigError,
  Ec2LaunchError,
  Ec2Launcher,
  type Ec2LauncherConfig,
  renderUserData,
} from '../src/index.ts';

const ec2 = mockClient(EC2Client);
beforeEach(() => ec2.reset());

const CONFIG: Ec2LauncherConfig = {
  cluster: 'demo',
  region: 'us-west-1',
  imageId: 'ami-0abcdef1234567890',
  subnetId: 'subnet-0123456789abcdef0',
  securityGroupIds: ['sg-0123456789abcdef0'],
  instanceProfile: 'paxos-instance',
};

const SPEC: ProcessSpec = {
  name: 'acceptor-g0-a1',
  role: 'acceptor',
  env: { ANNA_ROUTING: 'tcp://10.0.0.5:6450', ACCEPTOR_GROUP_ID: '0', ACCEPTOR_ID: '1' },
  ports: [12000],
  metricsPort: 16000,
  restart: true,
};

function awsError(name: string, message = name, status = 400): EC2ServiceException {
  return new EC2ServiceException({
    name,
    message,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status },
  });
}

/** A launcher whose back-off sleeps are recorded instead of waited. */
function launcher(config: Partial<Ec2LauncherConfig> = {}) {
  const sleeps: number[] = [];
  const l = new Ec2Launcher(
    { ...CONFIG, ...config },
    {
      ec2: new EC2Client({ region: 'us-west-1' }),
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      random: () => 0.5,
      clientToken: (spec) => `demo-${spec.name}-token`,
    },
  );
  return { l, sleeps };
}

const running = (id: string, name: string, role: string, ip: string) => ({
  InstanceId: id,
  PrivateIpAddress: ip,
  State: { Name: 'running' as const },
  Tags: [
    { Key: 'paxos:name', Value: name },
    { Key: 'paxos:role', Value: role },
    { Key: 'paxos:cluster', Value: 'demo' },
  ],
});

describe('Ec2Launcher.launch', () => {
  it('sends RunInstances with exactly the AMI, type, network, profile, shutdown behaviour, user-data and tags', async () => {
    ec2
      .on(RunInstancesCommand)
      .resolves({ Instances: [running('i-1', 'acceptor-g0-a1', 'acceptor', '10.0.0.9')] });
    const { l } = launcher();
    const instance = await l.launch(SPEC);

    expect(instance).toMatchObject({
      id: 'i-1',
      name: 'acceptor-g0-a1',
      role: 'acceptor',
      address: '10.0.0.9',
    });
    const calls = ec2.commandCalls(RunInstancesCommand);
    expect(calls).toHaveLength(1);
    const tags = [
      { Key: 'Name', Value: 'demo_acceptor-g0-a1' },
      { Key: 'paxos:cluster', Value: 'demo' },
      { Key: 'paxos:role', Value: 'acceptor' },
      { Key: 'paxos:name', Value: 'acceptor-g0-a1' },
    ];
    expect(calls[0]?.args[0].input).toEqual({
      ImageId: 'ami-0abcdef1234567890',
      InstanceType: 'm5.2xlarge',
      MinCount: 1,
      MaxCount: 1,
      SubnetId: 'subnet-0123456789abcdef0',
      SecurityGroupIds: ['sg-0123456789abcdef0'],
      IamInstanceProfile: { Name: 'paxos-instance' },
      InstanceInitiatedShutdownBehavior: 'terminate',
      MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled' },
      UserData: Buffer.from(renderUserData({ role: 'acceptor', env: SPEC.env }), 'utf8').toString('base64'),
      TagSpecifications: [
        { ResourceType: 'instance', Tags: tags },
        { ResourceType: 'volume', Tags: tags },
      ],
      ClientToken: 'demo-acceptor-g0-a1-token',
    });
  });

  it('passes an instance profile ARN as Arn, a key pair, a zone when there is no subnet, and extra tags', async () => {
    ec2.on(RunInstancesCommand).resolves({ Instances: [running('i-2', 'batcher-0', 'batcher', '10.0.0.3')] });
    const { l } = launcher({
      subnetId: undefined,
      availabilityZone: 'us-west-1b',
      instanceProfile: 'arn:aws:iam::123456789012:instance-profile/paxos',
      keyName: 'paxos-key',
      instanceType: 'c5.xlarge',
    });
    await l.launch({ ...SPEC, name: 'batcher-0', role: 'batcher' }, { 'paxos:settings': 'f=1' });
    const input = ec2.commandCalls(RunInstancesCommand)[0]?.args[0].input;
    expect(input?.IamInstanceProfile).toEqual({ Arn: 'arn:aws:iam::123456789012:instance-profile/paxos' });
    expect(input?.KeyName).toBe('paxos-key');
    expect(input?.InstanceType).toBe('c5.xlarge');
    expect(input?.SubnetId).toBeUndefined();
    expect(input?.Placement).toEqual({ AvailabilityZone: 'us-west-1b' });
    expect(input?.TagSpecifications?.[0]?.Tags).toContainEqual({ Key: 'paxos:settings', Value: 'f=1' });
  });

  it('launches many with bounded concurrency and keeps their order', async () => {
    let inFlight = 0;
    let most = 0;
    ec2.on(RunInstancesCommand).callsFake(async (input) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      const name = input.TagSpecifications[0].Tags.find((t: { Key: string }) => t.Key === 'paxos:name').Value;
      return { Instances: [running(`i-${name}`, name, 'batcher', '10.0.0.1')] };
    });
    const { l } = launcher({ concurrency: 3 });
    const specs = Array.from({ length: 10 }, (_, i) => ({
      ...SPEC,
      name: `batcher-${i}`,
      role: 'batcher' as const,
    }));
    const out = await l.launchAll(specs);
    expect(out.map((i) => i.name)).toEqual(specs.map((s) => s.name));
    expect(most).toBe(3);
  });

  it('refuses to launch without an AMI or a security group, before calling EC2', async () => {
    await expect(launcher({ imageId: undefined }).l.launch(SPEC)).rejects.toThrow(/no AMI: pass --ami/);
    await expect(launcher({ securityGroupIds: [] }).l.launch(SPEC)).rejects.toThrow(/no security group/);
    expect(ec2.calls()).toHaveLength(0);
  });

  it('with an archive bucket, the user-data of a process with a DATA_DIR uploads it under <cluster>/<name>/ at shutdown', () => {
    const { l } = launcher({ archiveBucket: 'paxos-logs' });
    const userData = (spec: ProcessSpec) =>
      Buffer.from(l.runInstancesInput(spec, 't').UserData ?? '', 'base64').toString('utf8');
    const acceptor = { ...SPEC, env: { ...SPEC.env, DATA_DIR: '/var/lib/paxos' } };
    expect(userData(acceptor)).toContain(
      'aws s3 cp --recursive --only-show-errors /var/lib/paxos s3://paxos-logs/demo/acceptor-g0-a1/',
    );
    expect(userData({ ...SPEC, name: 'batcher-0', role: 'batcher', env: {} })).not.toContain('paxos-archive');
    expect(
      Buffer.from(launcher().l.runInstancesInput(acceptor, 't').UserData ?? '', 'base64').toString(),
    ).not.toContain('paxos-archive');
    expect(() => launcher({ archiveBucket: 'Logs' })).toThrow(
      new Ec2ConfigError(
        'archiveBucket',
        'Logs',
        'S3 bucket: expected 3-63 lower-case letters, digits, . and -',
      ),
    );
  });

  it('rejects malformed settings, naming the setting and what is expected', () => {
    expect(() => launcher({ imageId: 'ubuntu-22.04' })).toThrow(
      new Ec2ConfigError('imageId', 'ubuntu-22.04', 'AMI id: expected ami- followed by 8 or 17 hex digits'),
    );
    expect(() => launcher({ securityGroupIds: ['default'] })).toThrow(
      /invalid securityGroupIds.0: security group/,
    );
    expect(() => launcher({ cluster: 'My Cluster' })).toThrow(
      /invalid cluster: cluster name: expected lower-case/,
    );
  });
});

describe('retries', () => {
  it('retries throttling with growing, bounded back-off and the same ClientToken, then succeeds', async () => {
    ec2
      .on(RunInstancesCommand)
      .rejectsOnce(awsError('RequestLimitExceeded', 'Request limit exceeded.', 503))
      .rejectsOnce(awsError('RequestLimitExceeded', 'Request limit exceeded.', 503))
      .resolves({ Instances: [running('i-3', SPEC.name, 'acceptor', '10.0.0.4')] });
    const { l, sleeps } = launcher();
    await l.launch(SPEC);
    const calls = ec2.commandCalls(RunInstancesCommand);
    expect(calls).toHaveLength(3);
    // One idempotency token for all attempts: a retry can never start a second instance.
    expect(new Set(calls.map((c) => c.args[0].input.ClientToken))).toEqual(
      new Set(['demo-acceptor-g0-a1-token']),
    );
    // Full-jitter halves of 250 ms and 500 ms caps with random() = 0.5.
    expect(sleeps).toEqual([188, 375]);
  });

  it('gives up after maxAttempts with one clear line', async () => {
    ec2
      .on(DescribeInstancesCommand)
      .rejects(awsError('RequestLimitExceeded', 'Request limit exceeded.', 503));
    const { l, sleeps } = launcher({ maxAttempts: 4, maxDelayMs: 600 });
    await expect(l.list()).rejects.toThrow(
      'DescribeInstances: EC2 kept throttling the request (RequestLimitExceeded) after 4 attempts with back-off',
    );
    expect(ec2.commandCalls(DescribeInstancesCommand)).toHaveLength(4);
    expect(sleeps).toEqual([188, 375, 450]);
  });

  it('retries a 5xx from EC2 too, but not a client error', async () => {
    ec2
      .on(TerminateInstancesCommand)
      .rejectsOnce(awsError('InternalError', 'An internal error has occurred', 500))
      .resolves({});
    const { l } = launcher();
    await l.terminate(['i-1']);
    expect(ec2.commandCalls(TerminateInstancesCommand)).toHaveLength(2);

    ec2.reset();
    ec2
      .on(RunInstancesCommand)
      .rejects(awsError('InvalidAMIID.NotFound', "The image id '[ami-0abcdef1234567890]' does not exist"));
    await expect(launcher().l.launch(SPEC)).rejects.toThrow(Ec2LaunchError);
    expect(ec2.commandCalls(RunInstancesCommand)).toHaveLength(1);
  });
});

describe('error mapping', () => {
  const cases: [string, RegExp][] = [
    [
      'InvalidAMIID.NotFound',
      /^RunInstances: AMI "ami-0abcdef1234567890" cannot be used in us-west-1 \(InvalidAMIID.NotFound\): expected the id .* infra\/ami\/build-ami.sh/,
    ],
    ['InvalidAMIID.Malformed', /AMI "ami-0abcdef1234567890" cannot be used/],
    [
      'InsufficientInstanceCapacity',
      /no capacity for m5.2xlarge in this availability zone .* try another --subnet .* or --instance-type/,
    ],
    [
      'VcpuLimitExceeded',
      /EC2 limit in us-west-1 is reached \(VcpuLimitExceeded\): request a higher vCPU limit/,
    ],
    ['InstanceLimitExceeded', /limit in us-west-1 is reached \(InstanceLimitExceeded\)/],
    [
      'UnauthorizedOperation',
      /may not call ec2:RunInstances \(UnauthorizedOperation\): attach the launcher policy/,
    ],
    ['AuthFailure', /AWS rejected the credentials \(AuthFailure\)/],
    ['InvalidSubnetID.NotFound', /the subnet does not exist in us-west-1/],
    ['InvalidGroup.NotFound', /the security group does not exist in us-west-1/],
    ['SomethingNew', /^RunInstances: SomethingNew: SomethingNew$/],
  ];
  it.each(cases)('%s becomes one line saying what to do', async (code, message) => {
    ec2.on(RunInstancesCommand).rejects(awsError(code));
    const err = await launcher()
      .l.launch(SPEC)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Ec2LaunchError);
    expect((err as Ec2LaunchError).message).toMatch(message);
    expect((err as Ec2LaunchError).code).toBe(code);
    expect((err as Ec2LaunchError).message).not.toContain('\n');
  });

  it('names missing credentials', async () => {
    const e = new Error('Could not load credentials from any providers');
    e.name = 'CredentialsProviderError';
    ec2.on(DescribeInstancesCommand).rejects(e);
    await expect(launcher().l.list()).rejects.toThrow(
      /^DescribeInstances: no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/,
    );
  });

  it('names a missing or malformed region before any call', () => {
    const saved = { r: process.env.AWS_REGION, d: process.env.AWS_DEFAULT_REGION };
    delete process.env.AWS_REGION;
    delete process.env.AWS_DEFAULT_REGION;
    try {
      expect(() => createEc2Client(undefined)).toThrow('no AWS region: set AWS_REGION or pass --region');
      expect(() => createEc2Client('california')).toThrow(
        'AWS region "california" is not valid: expected e.g. us-west-1',
      );
      expect(createEc2Client('eu-central-1')).toBeInstanceOf(EC2Client);
    } finally {
      if (saved.r !== undefined) process.env.AWS_REGION = saved.r;
      if (saved.d !== undefined) process.env.AWS_DEFAULT_REGION = saved.d;
    }
  });
});

describe('describe, wait, terminate', () => {
  it('lists by the cluster tag and live states, across pages', async () => {
    ec2
      .on(DescribeInstancesCommand)
      .resolvesOnce({
        Reservations: [{ Instances: [running('i-1', 'batcher-0', 'batcher', '10.0.0.1')] }],
        NextToken: 'p2',
      })
      .resolvesOnce({ Reservations: [{ Instances: [running('i-2', 'batcher-1', 'batcher', '10.0.0.2')] }] });
    const list = await launcher().l.list({ role: 'batcher' });
    expect(list.map((i) => [i.id, i.name, i.role, i.state, i.address])).toEqual([
      ['i-1', 'batcher-0', 'batcher', 'running', '10.0.0.1'],
      ['i-2', 'batcher-1', 'batcher', 'running', '10.0.0.2'],
    ]);
    const inputs = ec2.commandCalls(DescribeInstancesCommand).map((c) => c.args[0].input);
    expect(inputs[0]).toEqual({
      Filters: [
        { Name: 'tag:paxos:cluster', Values: ['demo'] },
        {
          Name: 'instance-state-name',
          Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down'],
        },
        { Name: 'tag:paxos:role', Values: ['batcher'] },
      ],
    });
    expect(inputs[1]?.NextToken).toBe('p2');
  });

  it('lists terminated instances too when asked (what every name the cluster used needs)', async () => {
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [] });
    await launcher().l.list({ includeTerminated: true });
    expect(ec2.commandCalls(DescribeInstancesCommand)[0]?.args[0].input.Filters?.[1]).toEqual({
      Name: 'instance-state-name',
      Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down', 'terminated'],
    });
  });

  it('stop(name) terminates the instances tagged with that name', async () => {
    ec2.on(DescribeInstancesCommand).resolves({
      Reservations: [{ Instances: [running('i-7', 'proposer-1', 'proposer', '10.0.0.7')] }],
    });
    ec2.on(TerminateInstancesCommand).resolves({});
    await launcher().l.stop('proposer-1');
    expect(ec2.commandCalls(DescribeInstancesCommand)[0]?.args[0].input.Filters).toContainEqual({
      Name: 'tag:paxos:name',
      Values: ['proposer-1'],
    });
    expect(ec2.commandCalls(TerminateInstancesCommand)[0]?.args[0].input).toEqual({ InstanceIds: ['i-7'] });
  });

  it('waits until every instance runs, polling; fails with the reason when one is terminated', async () => {
    ec2
      .on(DescribeInstancesCommand)
      .resolvesOnce({
        Reservations: [
          { Instances: [{ ...running('i-1', 'a', 'acceptor', '10.0.0.1'), State: { Name: 'pending' } }] },
        ],
      })
      .resolvesOnce({ Reservations: [{ Instances: [running('i-1', 'a', 'acceptor', '10.0.0.1')] }] });
    const { l, sleeps } = launcher();
    const up = await l.waitUntilRunning(['i-1'], { pollMs: 1000 });
    expect(up.map((i) => i.state)).toEqual(['running']);
    expect(sleeps).toEqual([1000]);

    ec2.reset();
    ec2.on(DescribeInstancesCommand).resolves({
      Reservations: [
        {
          Instances: [
            {
              ...running('i-9', 'acceptor-g0-a0', 'acceptor', '10.0.0.9'),
              State: { Name: 'terminated' },
              StateReason: { Message: 'Server.InsufficientInstanceCapacity: Insufficient capacity.' },
            },
          ],
        },
      ],
    });
    await expect(launcher().l.waitUntilRunning(['i-9'])).rejects.toThrow(
      'acceptor-g0-a0 (i-9) was terminated while starting: Server.InsufficientInstanceCapacity: Insufficient capacity.',
    );
  });

  it('gives up waiting after the timeout, naming what is not running', async () => {
    ec2.on(DescribeInstancesCommand).resolves({
      Reservations: [
        {
          Instances: [{ ...running('i-1', 'batcher-0', 'batcher', '10.0.0.1'), State: { Name: 'pending' } }],
        },
      ],
    });
    const { l, sleeps } = launcher();
    await expect(l.waitUntilRunning(['i-1'], { timeoutMs: 3000, pollMs: 1000 })).rejects.toThrow(
      'instances not running after 3 s: batcher-0 (pending)',
    );
    expect(sleeps).toEqual([1000, 1000, 1000]);
  });

  it('terminates in batches of at most 1000 ids', async () => {
    ec2.on(TerminateInstancesCommand).resolves({});
    await launcher().l.terminate(Array.from({ length: 2500 }, (_, i) => `i-${i}`));
    expect(
      ec2.commandCalls(TerminateInstancesCommand).map((c) => c.args[0].input.InstanceIds?.length),
    ).toEqual([1000, 1000, 500]);
  });
});
