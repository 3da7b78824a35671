/**
 * `pnpm bench` in core: step throughput of each role (events/s) and the codec's encode+decode
 * rate. Prints a table and a JSON document; asserts nothing (figures on shared machines are noisy).
 * BENCH_SHORT=1 runs a tiny version that only checks the benchmark works.
 */
import {
  BENCH_SHORT,
  benchFlags,
  benchReport,
  printTable,
  publishBenchReport,
} from '../../../scripts/bench-report.ts';
import {
  Acceptor,
  type Address,
  type Ballot,
  Batcher,
  Client,
  type Command,
  type Configuration,
  configStamp,
  decodeEnvelope,
  type Effect,
  type Envelope,
  encodeBatch,
  encodeEnvelope,
  type Message,
  Proposer,
  ProxyLeader,
  type Role,
  Unbatcher,
} from '../src/index.ts';

// -o json: only the JSON document on stdout; --version.
benchFlags(import.meta.url);

const SECONDS = BENCH_SHORT ? 0.05 : 1.5;
const BATCH = 40;

interface Result {
  name: string;
  unit: string;
  operations: number;
  seconds: number;
  perSecond: number;
}

/** Runs `iteration` (which does `opsPerIteration` operations) repeatedly for about SECONDS. */
function measure(
  name: string,
  unit: string,
  opsPerIteration: number,
  iteration: (i: number) => void,
): Result {
  for (let i = 0; i < 1000; i++) iteration(i); // warm-up
  let iterations = 0;
  const started = performance.now();
  const deadline = started + SECONDS * 1000;
  while (performance.now() < deadline) {
    for (let k = 0; k < 256; k++) iteration(1000 + iterations++);
  }
  const seconds = (performance.now() - started) / 1000;
  const operations = iterations * opsPerIteration;
  return { name, unit, operations, seconds, perSecond: operations / seconds };
}

const ballot: Ballot = { round: 1, proposerId: 1 };
const config: Configuration = {
  f: 1,
  groups: [0, 1].map((g) => ({ groupId: g, acceptors: [0, 1, 2].map((a) => `acceptor/g${g}/${a}`) })),
};
const commands: Command[] = Array.from({ length: BATCH }, (_, i) => ({
  clientId: 'client/0',
  requestId: i,
  payload: new Uint8Array(16).fill(i),
}));
const batch = encodeBatch(commands);
const batchValue = { kind: 'batch', batch } as const;
const deliver = (role: Role, from: Address, message: Message, now = 0): Effect[] =>
  role.step(now, { type: 'message', from, message });

const results: Result[] = [];

{
  const acceptor = new Acceptor({ address: 'acceptor/g0/0', groupId: 0, acceptorId: 0 });
  results.push(
    measure('acceptor: phase-2a', 'events', 1, (i) =>
      deliver(acceptor, 'proxy/0', {
        type: 'Phase2a',
        slot: i,
        ballot,
        value: batchValue,
        watermark: i,
        groupId: 0,
        acceptors: [],
        config: { id: 1, groups: [0], acceptorIds: [] },
      }),
    ),
  );
}

{
  const proxy = new ProxyLeader({ address: 'proxy/0', members: { unbatchers: ['unbatcher/0'] } });
  const group = config.groups[0]?.acceptors ?? [];
  results.push(
    measure('proxy leader: phase-2a + 2 phase-2b', 'events', 3, (i) => {
      deliver(proxy, 'proposer/0', {
        type: 'Phase2a',
        slot: i,
        ballot,
        value: batchValue,
        watermark: 0,
        groupId: 0,
        acceptors: group,
        config: configStamp(config),
      });
      deliver(proxy, group[0] as Address, { type: 'Phase2b', slot: i, ballot, groupId: 0, acceptorId: 0 });
      deliver(proxy, group[1] as Address, { type: 'Phase2b', slot: i, ballot, groupId: 0, acceptorId: 1 });
    }),
  );
}

{
  const leader = new Proposer({
    address: 'proposer/0',
    proposerId: 1,
    config,
    members: { proposers: ['proposer/0'], batchers: [], proxyLeaders: ['proxy/0', 'proxy/1'] },
    random: () => 0.5,
  });
  leader.start(0);
  leader.step(0, { type: 'timer', name: 'election' });
  for (const g of config.groups) {
    for (const acceptorId of [0, 1]) {
      deliver(leader, g.acceptors[acceptorId] as Address, {
        type: 'Phase1b',
        ballot: leader.currentBallot,
        groupId: g.groupId,
        acceptorId,
        watermark: 0,
        accepted: [],
        fromSlot: 0,
        nextSlot: 0,
        more: false,
        acceptedEnd: 0,
      });
    }
  }
  if (leader.status !== 'leader') throw new Error('bench setup: proposer did not become leader');
  const leaderBallot = leader.currentBallot;
  let slot = 0;
  results.push(
    measure('proposer (leader): batch + chosen', 'events', 2, () => {
      deliver(leader, 'batcher/0', { type: 'ClientBatch', batch, forwarded: false });
      deliver(leader, 'proxy/0', { type: 'Chosen', slot: slot++, ballot: leaderBallot, value: null });
    }),
  );
}

{
  const batcher = new Batcher({
    address: 'batcher/0',
    members: { proposers: ['proposer/0'] },
    batchSize: BATCH,
    batchTimeoutMs: 1,
  });
  results.push(
    measure('batcher: client request', 'events', 1, (i) =>
      deliver(batcher, 'client/0', { type: 'ClientRequest', command: commands[i % BATCH] as Command }),
    ),
  );
}

{
  const unbatcher = new Unbatcher({ address: 'unbatcher/0' });
  results.push(
    measure(`unbatcher: chosen batch of ${BATCH}`, 'events', 1, (i) =>
      deliver(unbatcher, 'proxy/0', { type: 'Chosen', slot: i, ballot, value: batchValue }),
    ),
  );
}

{
  const client = new Client({
    address: 'client/0',
    members: { batchers: ['batcher/0'] },
    resendTimeoutMs: 1000,
  });
  const payload = new Uint8Array(16);
  results.push(
    measure('client: submit + reply', 'events', 2, () => {
      const { requestId } = client.submit(0, payload);
      deliver(client, 'unbatcher/0', {
        type: 'ClientReply',
        clientId: 'client/0',
        requestId,
        slot: requestId,
      });
    }),
  );
}

for (const [name, envelope] of [
  [
    'codec: Phase2b encode+decode',
    {
      from: 'tcp://127.0.0.1:12000',
      message: { type: 'Phase2b', slot: 123456, ballot, groupId: 1, acceptorId: 2 },
    },
  ],
  [
    `codec: Phase2a (${BATCH} x 16 B) encode+decode`,
    {
      from: 'tcp://127.0.0.1:11000',
      message: {
        type: 'Phase2a',
        slot: 123456,
        ballot,
        value: batchValue,
        watermark: 123000,
        groupId: 1,
        acceptors: [],
        config: configStamp(config),
      },
    },
  ],
] as [string, Envelope][]) {
  results.push(
    measure(name, 'messages', 1, () => {
      const decoded = decodeEnvelope(encodeEnvelope(envelope));
      if (!decoded.ok) throw new Error(decoded.error.reason);
    }),
  );
}

const report = benchReport('core-step', {
  results: results.map((r) => ({
    ...r,
    seconds: Number(r.seconds.toFixed(3)),
    perSecond: Math.round(r.perSecond),
  })),
});

console.log('\n@paxos/core step benchmark\n');
printTable(
  ['benchmark', 'rate', ''],
  report.results.map((r) => [r.name, r.perSecond, `${r.unit}/s`]),
);
publishBenchReport(report);
