import {
  DescribeInstancesCommand,
  type Instance,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import type { Ec2Api } from './ec2.ts';

/**
 * Stands in for EC2 with `--dry-run`: prints every call the launcher would make, with its full
 * request, and answers as EC2 would (instances start running at once with made-up ids and
 * addresses), so a whole `up`, `scale` or `down` can be read through without credentials.
 */
export class DryRunEc2 implements Ec2Api {
  private readonly instances: Instance[] = [];
  readonly calls: { action: string; input: unknown }[] = [];

  constructor(private readonly print: (line: string) => void) {}

  async send(
    command: RunInstancesCommand | DescribeInstancesCommand | TerminateInstancesCommand,
  ): Promise<unknown> {
    if (command instanceof RunInstancesCommand) {
      const input = command.input;
      this.record('RunInstances', input, { ...input, UserData: describeUserData(input.UserData) });
      const n = this.instances.length + 1;
      const instance: Instance = {
        InstanceId: `i-dryrun${String(n).padStart(9, '0')}`,
        PrivateIpAddress: `10.0.${Math.floor(n / 250)}.${(n % 250) + 4}`,
        State: { Name: 'running', Code: 16 },
        LaunchTime: new Date(),
        Tags: input.TagSpecifications?.find((t) => t.ResourceType === 'instance')?.Tags ?? [],
      };
      this.instances.push(instance);
      return { Instances: [instance] };
    }
    if (command instanceof DescribeInstancesCommand) {
      const input = command.input;
      this.record('DescribeInstances', input);
      const matches = this.instances.filter(
        (i) =>
          (input.InstanceIds === undefined || input.InstanceIds.includes(i.InstanceId ?? '')) &&
          (input.Filters ?? []).every((f) => {
            const values = f.Values ?? [];
            if (f.Name === 'instance-state-name') return values.includes(i.State?.Name ?? '');
            if (f.Name?.startsWith('tag:')) {
              const key = f.Name.slice(4);
              return values.includes(i.Tags?.find((t) => t.Key === key)?.Value ?? '');
            }
            return true;
          }),
      );
      return { Reservations: matches.length === 0 ? [] : [{ Instances: matches }] };
    }
    if (command instanceof TerminateInstancesCommand) {
      this.record('TerminateInstances', command.input);
      for (const i of this.instances) {
        if (command.input.InstanceIds?.includes(i.InstanceId ?? ''))
          i.State = { Name: 'terminated', Code: 48 };
      }
      return { TerminatingInstances: [] };
    }
    throw new Error('dry run: unexpected EC2 command');
  }

  private record(action: string, input: unknown, shown: unknown = input): void {
    this.calls.push({ action, input });
    this.print(`[dry run] ec2:${action} ${JSON.stringify(shown)}`);
  }
}

/** The user-data is base64 of a script; the dry run shows the service it starts and its environment. */
function describeUserData(base64: string | undefined): string {
  if (base64 === undefined) return '(none)';
  const script = Buffer.from(base64, 'base64').toString('utf8');
  const exec = /^ExecStart=(.*)$/m.exec(script)?.[1] ?? '?';
  const env = /<<'PAXOS_ENV_*'\n([\s\S]*?)\nPAXOS_ENV_*\n/.exec(script)?.[1]?.split('\n').join(' ') ?? '';
  return `<${script.length} bytes: ExecStart=${exec}; ${env}>`;
}
