import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Client } from '@paxos/core';
import {
  endpoint,
  integer,
  Node,
  nodeOptions,
  PAYLOAD_BYTES_SETTING,
  port,
  runApp,
  setting,
  text,
} from '@paxos/runtime';
import { percentile } from './stats.ts';

await runApp({
  program: 'paxos-client',
  description:
    'Closed-loop load generator: NUM_CLIENTS clients each keep WINDOW commands outstanding. Prints JSON lines (progress, then a summary) on stdout.',
  settings: {
    port: port('CLIENT_PORT', '--port', 'replies from unbatchers', 10000),
    clients: setting({
      env: 'NUM_CLIENTS',
      flag: '--clients',
      description: 'concurrent clients',
      expected: 'an integer >= 1',
      schema: integer(1),
      default: '16',
    }),
    window: setting({
      env: 'WINDOW',
      flag: '--window',
      description: 'commands each client keeps outstanding',
      expected: 'an integer >= 1',
      schema: integer(1),
      default: '1',
    }),
    durationS: setting({
      env: 'DURATION_S',
      flag: '--duration',
      description: 'seconds of load (0 = until stopped or COMMANDS are done)',
      expected: 'an integer >= 0 (seconds)',
      schema: integer(0),
      default: '30',
    }),
    commands: setting({
      env: 'COMMANDS',
      flag: '--commands',
      description: 'stop after this many commands in all (0 = no limit)',
      expected: 'an integer >= 0',
      schema: integer(0),
      default: '0',
    }),
    payloadBytes: PAYLOAD_BYTES_SETTING,
    resendMs: setting({
      env: 'CLIENT_RESEND_MS',
      flag: '--resend-ms',
      description: 'resend a command not acknowledged within this',
      expected: 'an integer >= 1 (milliseconds)',
      schema: integer(1),
      default: '1000',
    }),
    reportMs: setting({
      env: 'REPORT_INTERVAL_MS',
      flag: '--report-ms',
      description: 'progress line period',
      expected: 'an integer >= 50 (milliseconds)',
      schema: integer(50),
      default: '1000',
    }),
    drainS: setting({
      env: 'DRAIN_S',
      flag: '--drain',
      description:
        'when DURATION_S is reached, stop submitting and wait up to this long for the commands still outstanding',
      expected: 'an integer >= 0 (seconds)',
      schema: integer(0),
      default: '0',
    }),
    acksFile: setting({
      env: 'ACKS_FILE',
      flag: '--acks-file',
      description: 'write every acknowledgement as CSV (client,requestId,slot,latencyMs)',
      expected: 'a file path',
      schema: text(),
      default: '',
    }),
  },
  async main(s, logger) {
    const acks = s.acksFile ? createWriteStream(s.acksFile) : null;
    const started = performance.now();
    const latencies: number[] = [];
    let interval: number[] = [];
    let submitted = 0;
    let acknowledged = 0;
    let finishing: Promise<void> | null = null;
    /** Set while draining: no new command goes out, outstanding ones may still be acknowledged. */
    let draining = false;
    const clients: Client[] = [];
    const byAddress = new Map<string, Client>();
    const payload = () => randomBytes(s.payloadBytes);

    const submit = (client: Client) => {
      if (finishing !== null || draining || (s.commands > 0 && submitted >= s.commands)) return;
      submitted++;
      node.perform(client, client.submit(performance.now(), payload()).effects);
    };

    const node = await Node.start(
      nodeOptions(s, logger, 'client', [endpoint(s.privateIp, s.port)], {
        onAcknowledged: (address, requestId, slot, latencyMs) => {
          // Once the summary is out the figures are final and the acks file is closing: a reply
          // still in flight (DURATION_S reached under load) is neither counted nor written.
          if (finishing !== null) return;
          acknowledged++;
          latencies.push(latencyMs);
          interval.push(latencyMs);
          acks?.write(`${address},${requestId},${slot},${latencyMs.toFixed(3)}\n`);
          const client = byAddress.get(address);
          if (client !== undefined) submit(client);
          if (s.commands > 0 && acknowledged >= s.commands) void finish('commands done');
          else if (draining && acknowledged >= submitted)
            void finish('duration reached, every command acknowledged');
        },
      }),
    );

    // The first poll gives the live batchers (by lease); later changes reach every client.
    let batchers: readonly string[] = [];
    await node.watch(
      ['Batchers'],
      (_kind, list) => {
        batchers = list;
        for (const c of clients) node.deliver(c, { type: 'membership', members: { batchers: list } });
        return null;
      },
      () => null,
    );
    const run = randomBytes(3).toString('hex');
    for (let i = 0; i < s.clients; i++) {
      const client = new Client({
        address: `${node.address}#${run}.${i}`,
        members: { batchers },
        resendTimeoutMs: s.resendMs,
      });
      clients.push(client);
      byAddress.set(client.address, client);
      node.attach(client);
    }

    let lastAcked = 0;
    let lastAt = started;
    const report = setInterval(() => {
      const now = performance.now();
      const rate = ((acknowledged - lastAcked) * 1000) / (now - lastAt);
      print({
        type: 'progress',
        elapsedS: round((now - started) / 1000),
        acknowledged,
        rate: Math.round(rate),
        p50Ms: round(percentile(interval, 0.5)),
        p99Ms: round(percentile(interval, 0.99)),
        pending: clients.reduce((n, c) => n + c.pendingCount, 0),
      });
      lastAcked = acknowledged;
      lastAt = now;
      interval = [];
    }, s.reportMs);

    // Every caller (COMMANDS done, DURATION_S, a signal's onStopped) waits for the one finish in
    // progress, so none exits the process before the acks file is flushed.
    function finish(reason: string): Promise<void> {
      finishing ??= finishOnce(reason);
      return finishing;
    }

    async function finishOnce(reason: string): Promise<void> {
      clearInterval(report);
      const seconds = (performance.now() - started) / 1000;
      print({
        type: 'summary',
        reason,
        seconds: round(seconds),
        clients: s.clients,
        submitted,
        acknowledged,
        throughput: Math.round(acknowledged / seconds),
        p50Ms: round(percentile(latencies, 0.5)),
        p99Ms: round(percentile(latencies, 0.99)),
        p999Ms: round(percentile(latencies, 0.999)),
      });
      await new Promise<void>((resolve) => (acks === null ? resolve() : acks.end(resolve)));
      await node.shutdown();
      process.exit(0);
    }

    if (s.durationS > 0) {
      setTimeout(() => {
        if (s.drainS === 0 || acknowledged >= submitted) {
          void finish('duration reached');
          return;
        }
        draining = true;
        setTimeout(() => void finish('duration reached, drain timed out'), s.drainS * 1000);
      }, s.durationS * 1000);
    }
    for (const client of clients) for (let w = 0; w < s.window; w++) submit(client);
    logger.info({ clients: s.clients, window: s.window, batchers: batchers.length }, 'load started');
    return { node, onStopped: () => finish('stopped') };
  },
});

function print(line: object): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
