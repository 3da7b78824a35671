import { AwsCluster, DryRunEc2, Ec2Launcher, type Ec2LauncherConfig } from '../src/index.ts';

export const LAUNCH_CONFIG = {
  cluster: 'demo',
  region: 'us-west-1',
  imageId: 'ami-0abcdef1234567890',
  securityGroupIds: ['sg-0123456789abcdef0'],
} satisfies Ec2LauncherConfig;

/** A cluster over the dry run's in-memory EC2 (it keeps instances and their state); no waiting. */
export function dryRunCluster(config: Partial<Ec2LauncherConfig> = {}) {
  const lines: string[] = [];
  const ec2 = new DryRunEc2(() => {});
  const launcher = new Ec2Launcher({ ...LAUNCH_CONFIG, ...config }, { ec2, sleep: async () => {} });
  const cluster = new AwsCluster(launcher, {
    log: (l) => lines.push(l),
    pollMs: 0,
    drainMs: 0,
    sleep: async () => {},
  });
  return { ec2, launcher, cluster, lines };
}
