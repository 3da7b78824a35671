import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectRecovered, FAULT_LOAD, runWithFault } from './fault-run.ts';
import { sleep, startCluster, throughput } from './helpers.ts';

let env: Awaited<ReturnType<typeof startCluster>>;
beforeAll(async () => {
  env = await startCluster(26300);
});
afterAll(async () => {
  await env?.stop();
});

describe('fault: a proxy leader pauses', () => {
  it('SIGSTOP of one proxy leader for 8 s under load, then SIGCONT: the other carries the load', async () => {
    const pauseMs = 8000;
    const r = await runWithFault(env, {
      fault: `proxy-leader-0 SIGSTOP ${pauseMs} ms`,
      ...FAULT_LOAD,
      inject: async () => {
        env.cluster.kill('proxy-leader-0', 'SIGSTOP');
        try {
          await sleep(pauseMs);
        } finally {
          env.cluster.kill('proxy-leader-0', 'SIGCONT');
        }
      },
    });
    const before = throughput(r.progress, r.faultStart - 2000, r.faultStart);
    const during = throughput(r.progress, r.faultStart, r.faultEnd);
    const after = throughput(r.progress, r.faultEnd, r.faultEnd + 3000);
    console.log(
      `proxy-leader-0 SIGSTOP: ${before} commands/s in the 2 s before the pause, ${during} during it, ${after} in the 3 s after`,
    );

    await env.cluster.down();
    expectRecovered(env, r);
    // The healthy proxy leader carries the load: slots avoid the stuck one once one is overdue,
    // and its lease expiry takes it out of every view.
    expect
      .soft(during, 'commands/s during the pause, against the 2 s before')
      .toBeGreaterThanOrEqual(before / 4);
  }, 120_000);
});
