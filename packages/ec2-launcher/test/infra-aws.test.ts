import { readFileSync } from 'node:fs';
import type { RunInstancesCommandInput } from '@aws-sdk/client-ec2';
import { DEFAULT_PORTS, DEFAULT_TOPOLOGY } from '@paxos/launcher';
import { describe, expect, it } from 'vitest';
import { dryRunCluster } from './fixtures.ts';

/** infra/aws/paxos-cluster.cfn.json: the security group, instance profiles and the launcher's policy. */
const TEMPLATE_PATH = new URL('../../../infra/aws/paxos-cluster.cfn.json', import.meta.url);
const text = readFileSync(TEMPLATE_PATH, 'utf8');
// biome-ignore lint/suspicious/noExplicitAny: a CloudFormation document is free-form JSON
const template = JSON.parse(text) as any;
// biome-ignore lint/suspicious/noExplicitAny: resource properties are free-form too
const resources = template.Resources as Record<string, { Type: string; Condition?: string; Properties: any }>;

interface Statement {
  Sid: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}
const actions = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const launcherStatements = resources.LauncherPolicy?.Properties.PolicyDocument.Statement as Statement[];

/** Every Ref, Fn::GetAtt and Fn::Sub ${…} name in the template. */
function referencedNames(node: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(node)) for (const n of node) referencedNames(n, out);
  else if (node !== null && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'Ref') out.add(v as string);
      else if (k === 'Fn::GetAtt') out.add((v as string[])[0] as string);
      else if (k === 'Fn::Sub')
        for (const m of (v as string).matchAll(/\$\{([A-Za-z0-9:]+)/g)) out.add(m[1] as string);
      else if (k === 'Condition' && typeof v === 'string') out.add(`condition:${v}`);
      referencedNames(v, out);
    }
  }
  return out;
}

/** The EC2 and IAM actions one whole up / scale / status / down makes, read off the requests. */
async function actionsTheLauncherUses(): Promise<Set<string>> {
  const { ec2, cluster } = dryRunCluster({ instanceProfile: 'paxos-instance', keyName: 'paxos-key' });
  await cluster.up({ ...DEFAULT_TOPOLOGY, keyPrefix: 'p-' });
  await cluster.scale('batcher', 3);
  await cluster.scale('batcher', 1);
  await cluster.status();
  await cluster.down();
  const used = new Set(ec2.calls.map((c) => `ec2:${c.action}`));
  for (const c of ec2.calls.filter((c) => c.action === 'RunInstances')) {
    const input = c.input as RunInstancesCommandInput;
    // Tags given at launch are authorized as ec2:CreateTags; an instance profile needs iam:PassRole.
    if ((input.TagSpecifications ?? []).length > 0) used.add('ec2:CreateTags');
    if (input.IamInstanceProfile !== undefined) used.add('iam:PassRole');
  }
  return used;
}

describe('infra/aws/paxos-cluster.cfn.json', () => {
  it('refers only to parameters, resources and conditions it defines', () => {
    const defined = new Set([
      ...Object.keys(template.Parameters),
      ...Object.keys(resources),
      ...Object.keys(template.Conditions).map((c) => `condition:${c}`),
      'AWS::Partition',
      'AWS::Region',
      'AWS::AccountId',
      'AWS::NoValue',
    ]);
    const missing = [...referencedNames(template)].filter((n) => !defined.has(n.replace(/\..*$/, '')));
    expect(missing).toEqual([]);
  });

  it('opens exactly the ports the roles listen on, each only to members of the same group', () => {
    const ingress = Object.values(resources).filter((r) => r.Type === 'AWS::EC2::SecurityGroupIngress');
    const fromGroup = ingress.filter((r) => r.Properties.SourceSecurityGroupId !== undefined);
    for (const r of fromGroup) {
      expect(r.Properties.SourceSecurityGroupId).toEqual({
        'Fn::GetAtt': ['ClusterSecurityGroup', 'GroupId'],
      });
      expect(r.Properties.GroupId).toEqual({ 'Fn::GetAtt': ['ClusterSecurityGroup', 'GroupId'] });
      expect(r.Properties.IpProtocol).toBe('tcp');
      expect(r.Properties.FromPort).toBe(r.Properties.ToPort);
    }
    const opened = fromGroup.map((r) => r.Properties.FromPort as number).sort((a, b) => a - b);
    expect(opened).toEqual([...new Set(Object.values(DEFAULT_PORTS))].sort((a, b) => a - b));
  });

  it('opens nothing to the world; SSH only from the CIDR the user gives, and only when given', () => {
    expect(text).not.toMatch(/0\.0\.0\.0\/0|::\/0/);
    const withCidr = Object.values(resources).filter((r) => r.Properties?.CidrIp !== undefined);
    expect(withCidr).toHaveLength(1);
    expect(withCidr[0]?.Properties).toMatchObject({ FromPort: 22, ToPort: 22, CidrIp: { Ref: 'SshCidr' } });
    expect(withCidr[0]?.Condition).toBe('AllowSsh');
    expect(resources.ClusterSecurityGroup?.Properties.SecurityGroupIngress).toBeUndefined();
    const cidr = new RegExp(template.Parameters.SshCidr.AllowedPattern);
    expect(cidr.test('203.0.113.7/32')).toBe(true);
    expect(cidr.test('')).toBe(true);
    expect(cidr.test('0.0.0.0')).toBe(false);
  });

  it('gives the launcher exactly the actions it uses, and no wildcard actions', async () => {
    const granted = new Set(launcherStatements.flatMap(actions));
    expect(granted).toEqual(await actionsTheLauncherUses());
    for (const s of launcherStatements) {
      expect(s.Effect).toBe('Allow');
      for (const a of actions(s)) expect(a).not.toContain('*');
      // Only Describe calls, which have no resource-level permissions, may name every resource.
      if (s.Resource === '*') expect(actions(s).every((a) => a.startsWith('ec2:Describe'))).toBe(true);
    }
    expect(JSON.stringify(template)).not.toMatch(/AdministratorAccess|AmazonEC2FullAccess|ManagedPolicyArns/);
  });

  it('lets the launcher create and terminate only instances tagged with the cluster, passing only the role instance role', () => {
    const sid = (name: string) => launcherStatements.find((s) => s.Sid === name) as Statement;
    expect(sid('LaunchOnlyTaggedInstances').Condition?.StringLike).toEqual({
      'aws:RequestTag/paxos:cluster': { Ref: 'ClusterName' },
    });
    expect(sid('TerminateOnlyClusterInstances').Condition?.StringLike).toEqual({
      'ec2:ResourceTag/paxos:cluster': { Ref: 'ClusterName' },
    });
    expect(sid('TagOnlyAtLaunch').Condition?.StringEquals).toEqual({ 'ec2:CreateAction': 'RunInstances' });
    expect(sid('PassOnlyTheRoleInstanceRole').Resource).toEqual({
      'Fn::GetAtt': ['RoleInstanceRole', 'Arn'],
    });
    expect(sid('LaunchIntoTheClusterVpcAndGroup').Condition?.StringEquals).toHaveProperty('ec2:Vpc');
  });

  it('allows every tag key the launcher sends', () => {
    const { launcher } = dryRunCluster();
    const input = launcher.runInstancesInput(
      { name: 'batcher-0', role: 'batcher', env: {}, ports: [], metricsPort: 16000, restart: true },
      't',
      { 'paxos:settings': 'f=1' },
    );
    const sent = new Set(input.TagSpecifications?.flatMap((t) => t.Tags?.map((tag) => tag.Key) ?? []));
    const allowed = launcherStatements.find((s) => s.Sid === 'LaunchOnlyTaggedInstances')?.Condition?.[
      'ForAllValues:StringEquals'
    ]?.['aws:TagKeys'] as string[];
    expect([...sent].sort()).toEqual([...allowed].sort());
  });

  it('gives the role instances only s3:PutObject under <ArchiveBucket>/<cluster>/ (none without a bucket), and Prometheus only discovery', () => {
    const role = resources.RoleInstanceRole?.Properties;
    expect(role.ManagedPolicyArns).toBeUndefined();
    const [condition, withBucket, without] = role.Policies['Fn::If'];
    expect(without).toEqual({ Ref: 'AWS::NoValue' });
    expect(template.Conditions[condition]).toEqual({
      'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'ArchiveBucket' }, ''] }],
    });
    const statements = withBucket.flatMap(
      (p: { PolicyDocument: { Statement: Statement[] } }) => p.PolicyDocument.Statement,
    );
    expect(statements).toEqual([
      {
        Sid: 'UploadArchiveOnly',
        Effect: 'Allow',
        // `aws s3 cp --recursive <dir> s3://…` uploads (multipart too) with PutObject; it lists nothing.
        Action: 's3:PutObject',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation's Fn::Sub placeholders
        Resource: { 'Fn::Sub': 'arn:${AWS::Partition}:s3:::${ArchiveBucket}/${ClusterName}/*' },
      },
    ]);
    // The keys the instances upload to (renderUserData's archive): <cluster>/<name>/…
    const { launcher } = dryRunCluster({ archiveBucket: 'paxos-logs' });
    const input = launcher.runInstancesInput(
      {
        name: 'acceptor-g0-a0',
        role: 'acceptor',
        env: { DATA_DIR: '/var/lib/paxos' },
        ports: [],
        metricsPort: 16000,
        restart: true,
      },
      't',
    );
    expect(Buffer.from(input.UserData ?? '', 'base64').toString()).toContain(
      `s3://paxos-logs/${launcher.config.cluster}/acceptor-g0-a0/`,
    );
    const bucket = new RegExp(template.Parameters.ArchiveBucket.AllowedPattern);
    expect(['', 'paxos-logs', 'a.b-c'].every((b) => bucket.test(b))).toBe(true);
    expect(['Paxos', 'ab', 'a_b'].some((b) => bucket.test(b))).toBe(false);
    const prometheus = resources.PrometheusRole?.Properties.Policies.flatMap(
      (p: { PolicyDocument: { Statement: Statement[] } }) => p.PolicyDocument.Statement.flatMap(actions),
    );
    expect(prometheus.every((a: string) => a.startsWith('ec2:Describe'))).toBe(true);
  });
});
