import { readMatchmakerEpoch, readTargetMatchmakers, writeTargetMatchmakers } from '@paxos/runtime';
import { describe, expect, it } from 'vitest';
import { Ec2LaunchError, type Ec2MatchmakerReplaceResult, replaceEc2, UsageError } from '../src/index.ts';
import type { FakeInstance } from './fake-ec2.ts';
import { useHarness } from './reconfigure-harness.ts';

/**
 * `pnpm aws replace matchmaker-N` (see reconfigure-harness.ts): the directory on ports
 * 22200–22399; the test's `step()` publishes the target matchmaker set as the leader would.
 */
const harness = useHarness(22200);

const userDataOf = (h: Awaited<ReturnType<typeof harness>>, name: string) =>
  Buffer.from(
    h.ec2.requests
      .filter((r) => r.action === 'RunInstances')
      .find((r) => [...r.params.values()].includes(name))
      ?.params.get('UserData') ?? '',
    'base64',
  ).toString('utf8');

describe('aws replace <matchmaker>', () => {
  it('launches a new id above every one EC2 lists, registers it, writes the target, waits for the published set, then terminates the old one', async () => {
    const h = await harness();
    // matchmaker-4 ran once and is terminated; EC2 still lists it.
    h.addTerminated('matchmaker-4', 'matchmaker');
    const old = h.ec2.byName('matchmaker-1') as FakeInstance;
    // No Prometheus: a matchmaker's replacement reads only EC2 and the directory.
    const { prometheusUrl: _, ...options } = h.options();
    const result = (await replaceEc2('matchmaker-1', options)) as Ec2MatchmakerReplaceResult;

    expect(h.launched()).toEqual(['matchmaker-5']);
    expect(await readTargetMatchmakers(h.membership)).toEqual({ version: 1, ids: [0, 5, 2] });
    expect(result.previous).toEqual({ version: 0, ids: [0, 1, 2] });
    expect(result.target).toEqual({ version: 1, ids: [0, 5, 2] });
    const added = h.ec2.byName('matchmaker-5') as FakeInstance;
    expect(result.launched?.id).toBe(added.id);
    expect(result.epoch).toEqual(await readMatchmakerEpoch(h.membership));
    expect(result.epoch?.addresses).toContain(`tcp://${added.ip}:15000`);
    expect(result.epoch?.addresses).not.toContain(`tcp://${old.ip}:15000`);
    expect(h.terminated()).toEqual([['matchmaker-1']]);
    expect(old.state).toBe('terminated');
    expect(result.terminated.map((i) => i.id)).toEqual([old.id]);

    // launch → registered → target written → the proposers move → published → terminate.
    const at = (event: string) => h.events.findIndex((e) => e.startsWith(event));
    const order = [
      'replacing matchmaker-1 by matchmaker-5: matchmakers version 0: matchmaker-0, matchmaker-1, matchmaker-2 → version 1: matchmaker-0, matchmaker-5, matchmaker-2; terminate matchmaker-1 (i-',
      'registered matchmaker-5',
      'target written: matchmakers version 1: matchmaker-0, matchmaker-5, matchmaker-2',
      'matchmaker target 1',
      'published 0,5,2',
      'matchmakers 0, 5, 2 in use (epoch 1)',
      'terminating matchmaker-1 (i-',
    ].map(at);
    expect(order.every((i) => i >= 0)).toBe(true);
    expect(order).toEqual([...order].sort((a, b) => a - b));

    // It boots as `up` starts a matchmaker, but as a replacement: no state until bootstrapped,
    // existing once its state is there, however long the bootstrap takes (a path unit).
    const script = userDataOf(h, 'matchmaker-5');
    for (const line of [
      'MATCHMAKER_ID="5"',
      'MATCHMAKER_STATE="replacement"',
      'MATCHMAKER_PORT="15000"',
      'DATA_DIR="/var/lib/paxos"',
      'F="1"',
      'INSTANCE="matchmaker-5"',
    ])
      expect(script).toContain(`\n${line}\n`);
    expect(script).toContain('systemctl enable --now paxos-matchmaker-state.path\n');
    expect(script).not.toContain('# First start only');
  });

  it('takes an instance id, and picks an id above the target set the directory holds', async () => {
    const h = await harness();
    // An earlier replacement (matchmaker-7 for matchmaker-1): registered in the directory, its
    // instance not in this stand-in EC2.
    await writeTargetMatchmakers(h.membership, { version: 3, ids: [0, 7, 2] });
    await h.membership.register('Matchmakers', '7=tcp://10.9.7.7:15000');
    h.publishedVersion = 3;
    const old = h.ec2.byName('matchmaker-2') as FakeInstance;
    const result = (await replaceEc2(old.id, h.options())) as Ec2MatchmakerReplaceResult;
    expect(h.launched()).toEqual(['matchmaker-8']);
    expect(result.target).toEqual({ version: 4, ids: [0, 7, 8] });
    expect(h.terminated()).toEqual([['matchmaker-2']]);
  });

  it('replaces a matchmaker whose instance is gone: nothing to terminate', async () => {
    const h = await harness();
    await writeTargetMatchmakers(h.membership, { version: 1, ids: [0, 6, 2] });
    h.publishedVersion = 1;
    const result = (await replaceEc2('matchmaker-6', h.options())) as Ec2MatchmakerReplaceResult;
    expect(h.launched()).toEqual(['matchmaker-7']);
    expect(result.target).toEqual({ version: 2, ids: [0, 7, 2] });
    expect(h.terminated()).toEqual([]);
  });

  it('refuses a matchmaker not in the target set, before launching anything', async () => {
    const h = await harness();
    h.addTerminated('matchmaker-4', 'matchmaker');
    for (const name of ['matchmaker-4', 'matchmaker-9'])
      await expect(replaceEc2(name, h.options())).rejects.toThrow(
        new UsageError(
          `${name} is not one of the matchmakers the cluster uses (matchmaker-0, matchmaker-1, matchmaker-2)`,
        ),
      );
    expect(h.launched()).toEqual([]);
    expect(await readTargetMatchmakers(h.membership)).toBeNull();
  });

  it('times out in one line when the proposers never use the new set, and terminates nothing', async () => {
    const h = await harness();
    h.autoPublish = false;
    await expect(replaceEc2('matchmaker-0', h.options({ timeoutMs: 5000 }))).rejects.toThrow(
      new Ec2LaunchError(
        'matchmaker replacement timed out after 5 s waiting for the proposers using matchmakers 3, 1, 2: no matchmaker set published yet',
        'ReconfigureTimeout',
      ),
    );
    expect(h.launched()).toEqual(['matchmaker-3']);
    expect(h.terminated()).toEqual([]);
  });

  it('plans only with planOnly (--dry-run): prints the plan, launches and writes nothing', async () => {
    const h = await harness();
    const result = await replaceEc2('matchmaker-2', h.options({ planOnly: true }));
    expect(h.events).toEqual([
      expect.stringMatching(
        /^would replace matchmaker-2 by matchmaker-3: matchmakers version 0: matchmaker-0, matchmaker-1, matchmaker-2 → version 1: matchmaker-0, matchmaker-1, matchmaker-3; terminate matchmaker-2 \(i-fake\d+\)$/,
      ),
    ]);
    expect(result).toMatchObject({ launched: null, terminated: [] });
    expect(h.launched()).toEqual([]);
    expect(await readTargetMatchmakers(h.membership)).toBeNull();
  });
});
