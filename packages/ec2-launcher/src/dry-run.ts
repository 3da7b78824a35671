import {
  DescribeInstancesCommand,
  type DescribeInstancesCommandOutput,
  type Instance,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import type { Ec2Api } from './ec2.ts';

/**
 * Stands in for EC2 with `--dry-run`: prints every call the launcher would make, with its full
 * request, and answers as EC2 would (instances start running at once with made-up ids and
 * addresses), so a whole `up`, `scale` or `down` can be read through without credentials.
 *
 * With `reads`, it stands in front of a real cluster instead (`autoscale --dry-run`): reads go
 * to EC2 and are not printed, RunInstances and TerminateInstances are printed and not sent, and
 * their effect is laid over what EC2 answers (the would-be instances listed, the would-be
 * terminated ones shutting down), so later periods see what the earlier ones would have done.
 */
export class DryRunEc2 implements Ec2Api {
  private readonly instances: Instance[] = [];
  /** Real instances this dry run "terminated". */
  private readonly terminated = new Set<string>();
  readonly calls: { action: string; input: unknown }[] = [];

  constructor(
    private readonly print: (line: string) => void,
    private readonly options: { readonly reads?: Ec2Api } = {},
  ) {}

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
      const { reads } = this.options;
      const real =
        reads === undefined ? null : ((await reads.send(command)) as DescribeInstancesCommandOutput);
      if (real === null) this.record('DescribeInstances', input);
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
      const own = matches.length === 0 ? [] : [{ Instances: matches }];
      if (real === null) return { Reservations: own };
      const reservations = (real.Reservations ?? []).map((r) => ({
        ...r,
        Instances: (r.Instances ?? []).map((i) =>
          this.terminated.has(i.InstanceId ?? '')
            ? { ...i, State: { Name: 'shutting-down' as const, Code: 32 } }
            : i,
        ),
      }));
      // Its own instances once, on the last page.
      return { ...real, Reservations: real.NextToken ? reservations : [...reservations, ...own] };
    }
    if (command instanceof TerminateInstancesCommand) {
      this.record('TerminateInstances', command.input);
      const ids = command.input.InstanceIds ?? [];
      for (const i of this.instances) {
        if (ids.includes(i.InstanceId ?? '')) i.State = { Name: 'terminated', Code: 48 };
      }
      if (this.options.reads !== undefined) {
        for (const id of ids) if (!this.instances.some((i) => i.InstanceId === id)) this.terminated.add(id);
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

/**
 * The user-data is base64 of a script; the dry run shows the service it starts, its environment
 * and, for an acceptor or a matchmaker, what the script writes over it once the first start's
 * log or state is there (see renderUserData).
 */
function describeUserData(base64: string | undefined): string {
  if (base64 === undefined) return '(none)';
  const script = Buffer.from(base64, 'base64').toString('utf8');
  const exec = /^ExecStart=(.*)$/m.exec(script)?.[1] ?? '?';
  const env = /<<'PAXOS_ENV_*'\n([\s\S]*?)\nPAXOS_ENV_*\n/.exec(script)?.[1]?.split('\n').join(' ') ?? '';
  const switched = /must find it: (.*) from then on\.$/m.exec(script)?.[1];
  return `<${script.length} bytes: ExecStart=${exec}; ${env}${switched === undefined ? '' : `; after the first start: ${switched}`}>`;
}
