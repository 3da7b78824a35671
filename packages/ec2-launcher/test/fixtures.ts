import { AwsCluster, DryRunEc2, type Ec2Api, Ec2Launcher, type Ec2LauncherConfig } from '../src/index.ts';

export const LAUNCH_CONFIG = {
  cluster: 'demo',
  region: 'us-west-1',
  imageId: 'ami-0abcdef1234567890',
  securityGroupIds: ['sg-0123456789abcdef0'],
} satisfies Ec2LauncherConfig;

/**
 * A cluster over the dry run's in-memory EC2 (it keeps instances and their state); no waiting.
 * `wrap` puts a test's own EC2 behaviour in front of the dry run.
 */
export function dryRunCluster(
  config: Partial<Ec2LauncherConfig> = {},
  wrap: (dry: DryRunEc2) => Ec2Api = (dry) => dry,
) {
  const lines: string[] = [];
  const ec2 = new DryRunEc2(() => {});
  const launcher = new Ec2Launcher(
    { ...LAUNCH_CONFIG, ...config },
    { ec2: wrap(ec2), sleep: async () => {} },
  );
  const cluster = new AwsCluster(launcher, {
    log: (l) => lines.push(l),
    pollMs: 0,
    drainMs: 0,
    sleep: async () => {},
  });
  return { ec2, launcher, cluster, lines };
}
