import { DEFAULT_TOPOLOGY } from '@paxos/launcher';
import { LocalCluster, sleep } from './src/cluster.ts';

const q = Number(process.argv[2]);
const rate = Number(process.argv[3]);
const cluster = new LocalCluster(
  {
    ...DEFAULT_TOPOLOGY,
    basePort: 27700,
    batchers: 1,
    proxyLeaders: 1,
    unbatchers: 1,
    logLevel: 'warn',
    keyPrefix: `s${Date.now()}-`,
  },
  '/tmp/cs3',
  undefined,
  { cpuQuota: q, cpuQuotaRoles: ['batcher', 'proxy-leader', 'unbatcher'] },
);
let t = performance.now();
await cluster.up();
console.log('up in', Math.round(performance.now() - t), cluster.cpuQuotaInForce());
const run = async (label: string) => {
  const s = await cluster.runClient({
    clients: 16,
    targetRate: rate,
    durationS: 8,
    drainS: 5,
    onLine: (l) => {
      if (l.type === 'progress') process.stdout.write(`${l.rate}/${Math.round(l.p99Ms)} `);
    },
  });
  console.log(`\n${label}`, s.throughput, s.p50Ms, s.p99Ms, s.shed);
};
await run('1 each');
t = performance.now();
await cluster.scale('proxy-leader', 3);
await cluster.scale('batcher', 2);
await cluster.scale('unbatcher', 2);
while ((await cluster.phases()).some((p) => p.phase === 'starting')) await sleep(100);
console.log('scaled, ready in', Math.round(performance.now() - t));
await run('3 pl, 2 b, 2 u');
await cluster.down();
process.exit(0);
