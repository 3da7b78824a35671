import { type Instance, type RunInstancesCommandInput, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { DEFAULT_TOPOLOGY } from '@paxos/launcher';
import { describe, expect, it } from 'vitest';
import {
  AwsCluster,
  DryRunEc2,
  decodeSettings,
  Ec2Launcher,
  type Ec2LauncherConfig,
  encodeSettings,
} from '../src/index.ts';
import { dryRunCluster, LAUNCH_CONFIG } from './fixtures.ts';

const setup = () => dryRunCluster();

const shape = { ...DEFAULT_TOPOLOGY, keyPrefix: 'demo-1-', directoryPollMs: 3000 };

function launched(ec2: DryRunEc2) {
  return ec2.calls
    .filter((c) => c.action === 'RunInstances')
    .map((c) => {
      const input = c.input as RunInstancesCommandInput;
      const tag = (key: string) => input.TagSpecifications?.[0]?.Tags?.find((t) => t.Key === key)?.Value;
      return {
        name: tag('paxos:name'),
        role: tag('paxos:role'),
        settings: tag('paxos:settings'),
        userData: input.UserData,
      };
    });
}

describe('AwsCluster', () => {
  it("up launches the seed's stages in order, each running before the next, all pointed at the new directory", async () => {
    const { ec2, cluster } = setup();
    const started = await cluster.up(shape);
    expect(started).toHaveLength(1 + 6 + 3 + 2 + 2 + 2 + 2);

    const roles = launched(ec2).map((l) => l.role);
    expect(roles).toEqual([
      'directory',
      ...Array(6).fill('acceptor'),
      ...Array(3).fill('matchmaker'),
      'proxy-leader',
      'proxy-leader',
      'unbatcher',
      'unbatcher',
      'proposer',
      'proposer',
      'batcher',
      'batcher',
    ]);
    // The existing-cluster check, then each stage's launches followed by a wait on exactly those instances.
    const compressed: string[] = [];
    for (const c of ec2.calls) {
      const label =
        c.action === 'RunInstances'
          ? 'run'
          : (c.input as { InstanceIds?: string[] }).InstanceIds === undefined
            ? 'list'
            : `wait${(c.input as { InstanceIds: string[] }).InstanceIds.length}`;
      const last = compressed.at(-1);
      if (label === 'run' && last?.startsWith('run'))
        compressed[compressed.length - 1] = `run${Number(last.slice(3)) + 1}`;
      else compressed.push(label === 'run' ? 'run1' : label);
    }
    expect(compressed).toEqual([
      'list',
      'run1',
      'wait1',
      'run9',
      'wait9',
      'run4',
      'wait4',
      'run2',
      'wait2',
      'run2',
      'wait2',
    ]);

    const directoryIp = started[0]?.address;
    for (const l of launched(ec2).slice(1)) {
      const script = Buffer.from(l.userData ?? '', 'base64').toString('utf8');
      expect(script).toContain(`ANNA_ROUTING="tcp://${directoryIp}:6450"`);
      expect(script).toContain('ANNA_KEY_PREFIX="demo-1-"');
      expect(l.settings).toBe(encodeSettings({ ...shape, annaRouting: `tcp://${directoryIp}:6450` }));
    }
  });

  it('up launches 2f+1 matchmakers whose boot script starts them new, switches to existing and leaves an exit 2 stopped', async () => {
    const { ec2, cluster } = setup();
    await cluster.up({ ...shape, f: 2, groups: 3 });
    const matchmakers = launched(ec2).filter((l) => l.role === 'matchmaker');
    expect(matchmakers.map((l) => l.name)).toEqual([0, 1, 2, 3, 4].map((id) => `matchmaker-${id}`));
    for (const [id, m] of matchmakers.entries()) {
      const script = Buffer.from(m.userData ?? '', 'base64').toString('utf8');
      expect(script).toContain('ExecStart=/usr/bin/node /opt/paxos/apps/matchmaker/dist/main.js\n');
      for (const line of [
        `MATCHMAKER_ID="${id}"`,
        'MATCHMAKER_PORT="15000"',
        'MATCHMAKER_STATE="new"',
        'DATA_DIR="/var/lib/paxos"',
        'DATA_FSYNC="true"',
        'F="2"',
        'ACCEPTOR_GROUPS="3"',
      ])
        expect(script).toContain(`\n${line}\n`);
      expect(script).toContain(`compgen -G '/var/lib/paxos/demo-1--m${id}/matchmaker'`);
      expect(script).toContain(
        `sed -i -e 's|^MATCHMAKER_STATE=.*$|MATCHMAKER_STATE="existing"|' /etc/paxos/matchmaker.env`,
      );
      expect(script).toMatch(/^RestartPreventExitStatus=2$/m);
      expect(script).toMatch(/^StateDirectory=paxos$/m);
    }
    // status lists them beside the acceptors; down --role matchmaker terminates only them.
    const status = (await cluster.status()).map((i) => i.role);
    expect(status.slice(1, 1 + 15 + 5)).toEqual([
      ...Array(15).fill('acceptor'),
      ...Array(5).fill('matchmaker'),
    ]);
    expect(await cluster.down('matchmaker')).toBe(5);
    expect((await cluster.status()).filter((i) => i.role === 'matchmaker')).toEqual([]);
  });

  it('up with an existing directory launches none', async () => {
    const { ec2, cluster } = setup();
    await cluster.up({ ...shape, annaRouting: 'tcp://10.1.2.3:6450' });
    expect(launched(ec2).map((l) => l.role)).not.toContain('directory');
    expect(Buffer.from(launched(ec2)[0]?.userData ?? '', 'base64').toString()).toContain(
      'ANNA_ROUTING="tcp://10.1.2.3:6450"',
    );
  });

  it('up refuses when the cluster already has instances', async () => {
    const { cluster } = setup();
    await cluster.up(shape);
    await expect(cluster.up(shape)).rejects.toThrow(
      'cluster demo already has 18 instances: use `scale` to change it or `down` first',
    );
  });

  it('scale out starts the missing names with the running settings; scale in stops the highest-numbered', async () => {
    const { ec2, cluster } = setup();
    await cluster.up(shape);
    const before = launched(ec2).length;
    await cluster.scale('batcher', 4);
    const added = launched(ec2).slice(before);
    expect(added.map((l) => l.name)).toEqual(['batcher-2', 'batcher-3']);
    const firstBatcher = launched(ec2).find((l) => l.name === 'batcher-0');
    expect(added[0]?.settings).toBe(firstBatcher?.settings);
    const script = (u: string | undefined) =>
      Buffer.from(u ?? '', 'base64')
        .toString()
        .replace(/batcher-\d/g, 'batcher-N');
    expect(script(added[1]?.userData)).toBe(script(firstBatcher?.userData));

    await cluster.scale('batcher', 1);
    const batchers = (await cluster.status()).filter((i) => i.role === 'batcher');
    expect(batchers.map((i) => i.name)).toEqual(['batcher-0']);
    const terminated = ec2.calls.filter((c) => c.action === 'TerminateInstances');
    expect(terminated).toHaveLength(1);
    expect((terminated[0]?.input as { InstanceIds?: string[] } | undefined)?.InstanceIds).toHaveLength(3);
  });

  it('scale back out right after a scale in replaces the instances still shutting down', async () => {
    // EC2 reports terminated instances as shutting-down for a while; the dry run terminates at once.
    const shuttingDown = new Set<string>();
    const { cluster } = dryRunCluster({}, (dry) => ({
      async send(command) {
        if (command instanceof TerminateInstancesCommand) {
          for (const id of command.input.InstanceIds ?? []) shuttingDown.add(id);
          return { TerminatingInstances: [] };
        }
        const out = (await dry.send(command)) as { Reservations?: { Instances?: Instance[] }[] };
        for (const i of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
          if (shuttingDown.has(i.InstanceId ?? '')) i.State = { Name: 'shutting-down', Code: 32 };
        }
        return out;
      },
    }));
    await cluster.up(shape);
    await cluster.scale('batcher', 4);
    await cluster.scale('batcher', 2);
    const byState = async () =>
      (await cluster.status()).filter((i) => i.role === 'batcher').map((i) => `${i.name} ${i.ec2State}`);
    expect(await byState()).toEqual([
      'batcher-0 running',
      'batcher-1 running',
      'batcher-2 shutting-down',
      'batcher-3 shutting-down',
    ]);

    await cluster.scale('batcher', 3);
    expect((await byState()).filter((s) => s.endsWith('running'))).toEqual([
      'batcher-0 running',
      'batcher-1 running',
      'batcher-2 running',
    ]);
    // Scaling in again leaves the instances already on their way out alone.
    await cluster.scale('batcher', 2);
    expect(await cluster.down('batcher')).toBe(2);
  });

  it('scale and add with wait: false return after RunInstances, without polling for running', async () => {
    const { ec2, cluster } = setup();
    await cluster.up(shape);
    const before = ec2.calls.length;
    const launched = await cluster.scale('batcher', 3, { wait: false });
    const added = await cluster.add('unbatcher', 2, { wait: false });
    expect([...launched, ...added].map((i) => i.name)).toEqual(['batcher-2', 'unbatcher-2', 'unbatcher-3']);
    // One listing each, then only launches: no DescribeInstances by id (the wait).
    expect(ec2.calls.slice(before).map((c) => c.action)).toEqual([
      'DescribeInstances',
      'RunInstances',
      'DescribeInstances',
      'RunInstances',
      'RunInstances',
    ]);
    expect(await cluster.removeHighest('unbatcher', 2)).toMatchObject([
      { name: 'unbatcher-2' },
      { name: 'unbatcher-3' },
    ]);
  });

  it('scale refuses acceptors, matchmakers and an empty cluster', async () => {
    const { cluster } = setup();
    await expect(cluster.scale('acceptor', 9)).rejects.toThrow(/acceptors do not scale by count/);
    const matchmakers = /^matchmakers do not scale by count: .*`down` and `up --f <f>` a new cluster$/;
    await expect(cluster.scale('matchmaker', 5)).rejects.toThrow(matchmakers);
    await cluster.up(shape);
    await expect(cluster.add('matchmaker', 1)).rejects.toThrow(matchmakers);
    await expect(cluster.removeHighest('matchmaker', 1)).rejects.toThrow(matchmakers);
    await expect(cluster.replace('matchmaker-0')).rejects.toThrow(matchmakers);
    expect((await cluster.status()).filter((i) => i.role === 'matchmaker')).toHaveLength(3);
  });

  it('scale refuses an empty cluster', async () => {
    const { cluster } = setup();
    await expect(cluster.scale('proposer', 3)).rejects.toThrow(
      'cluster demo has no instances: run `up` first',
    );
  });

  it('down terminates in reverse launch order, the directory last; --role only that role', async () => {
    const { ec2, cluster } = setup();
    await cluster.up(shape);
    const byId = new Map((await cluster.status()).map((i) => [i.id, i.role]));
    expect(await cluster.down('proposer')).toBe(2);
    expect(await cluster.down()).toBe(16);
    const stages = ec2.calls
      .filter((c) => c.action === 'TerminateInstances')
      .map((c) =>
        [...new Set((c.input as { InstanceIds: string[] }).InstanceIds.map((id) => byId.get(id)))].sort(),
      );
    expect(stages).toEqual([
      ['proposer'],
      ['batcher'],
      ['proxy-leader', 'unbatcher'],
      ['acceptor', 'matchmaker'],
      ['directory'],
    ]);
    expect(await cluster.status()).toEqual([]);
    expect(await cluster.down()).toBe(0);
  });

  it('remembers the archive bucket of `up` in paxos:settings, so later launches archive without the flag, which still overrides it', async () => {
    const ec2 = new DryRunEc2(() => {});
    const on = (config: Partial<Ec2LauncherConfig>) =>
      new AwsCluster(new Ec2Launcher({ ...LAUNCH_CONFIG, ...config }, { ec2, sleep: async () => {} }), {
        log: () => {},
        pollMs: 0,
        drainMs: 0,
      });
    await on({ archiveBucket: 'paxos-logs' }).up({ ...shape, annaRouting: 'tcp://10.0.0.5:6450' });
    const script = (l: { userData?: string | undefined }) =>
      Buffer.from(l.userData ?? '', 'base64').toString();
    expect(launched(ec2).every((l) => l.settings?.endsWith(' s3=paxos-logs'))).toBe(true);
    expect(decodeSettings(launched(ec2)[0]?.settings ?? '', {}).archiveBucket).toBe('paxos-logs');

    // A later run without --s3-bucket (nor AWS_S3_BUCKET): the cluster's bucket.
    await on({}).launchMatchmaker(3);
    await on({}).launchAcceptors([{ groupId: 2, acceptorId: 0 }]);
    for (const l of launched(ec2).slice(-2)) {
      expect(script(l)).toContain(' s3://paxos-logs/demo/');
      expect(l.settings).toMatch(/ s3=paxos-logs$/);
    }
    // The flag overrides it, for that launch (and its tag).
    await on({ archiveBucket: 'other-logs' }).launchMatchmaker(4);
    const last = launched(ec2).at(-1) ?? {};
    expect(script(last)).toContain(' s3://other-logs/demo/matchmaker-4/');
    expect((last as { settings?: string }).settings).toMatch(/ s3=other-logs$/);
    // A cluster launched without a bucket archives nothing, as before.
    const plain = dryRunCluster();
    await plain.cluster.up(shape);
    expect(launched(plain.ec2).some((l) => script(l).includes('paxos-archive'))).toBe(false);
    expect(launched(plain.ec2).some((l) => l.settings?.includes('s3='))).toBe(false);
  });

  it('settings survive the tag round trip', () => {
    const s = { ...shape, annaRouting: 'tcp://10.0.0.5:6450' };
    const counts = { proposer: 2, batcher: 2, 'proxy-leader': 2, unbatcher: 2 };
    const {
      extraEnv: _,
      host: __,
      basePort: ___,
      dataDir: ____,
      ...expected
    } = { ...s, extraEnv: undefined };
    expect(decodeSettings(encodeSettings(s), counts)).toEqual(expected);
    expect(() => decodeSettings('f=one', {})).toThrow(/has no integer f/);
  });
});

describe('AwsCluster.up waits for readiness', () => {
  it('without readiness says it waits for running only', async () => {
    const { cluster, lines } = setup();
    await cluster.up(shape);
    expect(lines[0]).toMatch(/^no --prometheus-url: waiting for each stage to be running/);
  });

  it('waits until every process of a stage is ready before the next, showing progress', async () => {
    const { cluster, lines } = setup();
    const asked: string[][] = [];
    // Each instance is ready from the second time it is asked about.
    const seen = new Set<string>();
    const started = await cluster.up(shape, {
      readiness: async (ids) => {
        asked.push([...ids]);
        const states = new Map(ids.map((id) => [id, seen.has(id)]));
        for (const id of ids) seen.add(id);
        return states;
      },
    });
    expect(started).toHaveLength(18);
    expect(lines.some((l) => l.startsWith('no --prometheus-url'))).toBe(false);
    // Two polls per stage (directory, acceptors and matchmakers, …), each on that stage's instances.
    expect(asked.map((ids) => ids.length)).toEqual([1, 1, 9, 9, 4, 4, 2, 2, 2, 2]);
    expect(lines).toContain('ready 0/1; waiting for directory');
    expect(lines).toContain('ready 1/1');
    expect(lines.filter((l) => l.startsWith('ready 0/9; waiting for acceptor-g0-a0,'))).toHaveLength(1);
  });

  it('fails naming the processes that never became ready, and a Prometheus error is said once', async () => {
    const { launcher } = setup();
    const lines: string[] = [];
    const cluster = new AwsCluster(launcher, {
      log: (l) => lines.push(l),
      pollMs: 0,
      readyTimeoutMs: 0,
      sleep: async () => {},
    });
    const never = cluster.up(shape, {
      readiness: async () => {
        throw new Error('connection refused');
      },
    });
    await expect(never).rejects.toThrow(/not ready in time: directory \(i-\w+\)/);
    expect(lines.filter((l) => l.includes('cannot read readiness from Prometheus'))).toHaveLength(1);
  });
});
