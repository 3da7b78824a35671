import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Client } from '@paxos/core';
import { LatencyHistogram } from '@paxos/latency';
import {
  ConfigError,
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
import { z } from 'zod';
import { chooseProfile, commandsDue, describeProfile, PROFILE_EXPECTED } from './profile.ts';

/**
 * How often the open loop sends what the profile has made due: short enough that a command waits
 * a few ms at most, long enough that a tick is not a timer per command at thousands per second.
 */
const TICK_MS = 5;

await runApp({
  program: 'paxos-client',
  description:
    'Load generator. Closed loop (the default): NUM_CLIENTS clients each keep WINDOW commands outstanding. Open loop (TARGET_RATE or LOAD_PROFILE): commands go out at the rate asked, whatever the replies, round-robin over the clients. Prints JSON lines (progress, then a summary) on stdout.',
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
      description: 'closed loop: commands each client keeps outstanding',
      expected: 'an integer >= 1',
      schema: integer(1),
      default: '1',
    }),
    targetRate: setting({
      env: 'TARGET_RATE',
      flag: '--target-rate',
      description: 'open loop at this constant rate, in all clients together (0 = closed loop)',
      expected: 'a number >= 0 (commands/s)',
      schema: z
        .string()
        .regex(/^\d+(\.\d+)?$/)
        .transform(Number)
        .pipe(z.number().finite()),
      default: '0',
    }),
    loadProfile: setting({
      env: 'LOAD_PROFILE',
      flag: '--load-profile',
      description:
        'open loop at a rate that changes: t:rate points (seconds since the start : commands/s), linear between them, the last rate held after the last, e.g. 0:200,60:1600,90:1600,91:4000 ("" = none)',
      // Checked at start-up, where the error can say which point is wrong.
      expected: PROFILE_EXPECTED,
      schema: text(),
      default: '',
    }),
    maxOutstanding: setting({
      env: 'MAX_OUTSTANDING',
      flag: '--max-outstanding',
      description:
        'open loop: commands one client may have outstanding; a command due at a client with this many is not sent and is counted as shed',
      expected: 'an integer >= 1',
      schema: integer(1),
      default: '1000',
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
    const chosen = chooseProfile(s.targetRate, s.loadProfile);
    if (!chosen.ok) throw new ConfigError(chosen.error);
    /** Null: closed loop. */
    const profile = chosen.profile;
    const acks = s.acksFile ? createWriteStream(s.acksFile) : null;
    const started = performance.now();
    // Bounded memory however long the run: HDR histograms, not a list of samples.
    const latencies = new LatencyHistogram();
    const interval = new LatencyHistogram();
    let submitted = 0;
    let acknowledged = 0;
    /** Open loop: commands due that were not sent because their client had MAX_OUTSTANDING. */
    let shed = 0;
    /** Open loop: when the profile's time 0 is (the load starts), and how far the sends have followed it. */
    let loadStarted = 0;
    let sentUpToS = 0;
    let nextClient = 0;
    let ticker: NodeJS.Timeout | undefined;
    let finishing: Promise<void> | null = null;
    /** Set while draining: no new command goes out, outstanding ones may still be acknowledged. */
    let draining = false;
    const clients: Client[] = [];
    const byAddress = new Map<string, Client>();
    const payload = () => randomBytes(s.payloadBytes);

    const submitting = () => finishing === null && !draining && (s.commands === 0 || submitted < s.commands);
    const submit = (client: Client) => {
      if (!submitting()) return;
      submitted++;
      node.perform(client, client.submit(performance.now(), payload()).effects);
    };

    /**
     * Open loop: sends every command the profile has made due since the last call. Counting from
     * the integral (not rate × tick) keeps the total exact through late or irregular ticks.
     */
    const sendDue = (now: number) => {
      const t = (now - loadStarted) / 1000;
      // The profile stops at DURATION_S, even when the timer that says so fires late.
      sendUpTo(s.durationS > 0 ? Math.min(t, s.durationS) : t);
    };
    const sendUpTo = (t: number) => {
      if (profile === null || !submitting() || t <= sentUpToS) return;
      const due = commandsDue(profile, sentUpToS, t);
      sentUpToS = t;
      for (let i = 0; i < due && submitting(); i++) {
        const client = clients[nextClient] as Client;
        nextClient = (nextClient + 1) % clients.length;
        // Bounded memory when the cluster falls behind: the command is dropped, not queued.
        if (client.pendingCount >= s.maxOutstanding) shed++;
        else submit(client);
      }
    };

    const node = await Node.start(
      nodeOptions(s, logger, 'client', [endpoint(s.privateIp, s.port)], {
        onAcknowledged: (address, requestId, slot, latencyMs) => {
          // Once the summary is out the figures are final and the acks file is closing: a reply
          // still in flight (DURATION_S reached under load) is neither counted nor written.
          if (finishing !== null) return;
          acknowledged++;
          latencies.recordMs(latencyMs);
          interval.recordMs(latencyMs);
          acks?.write(`${address},${requestId},${slot},${latencyMs.toFixed(3)}\n`);
          const client = byAddress.get(address);
          if (profile === null && client !== undefined) submit(client);
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
    let lastOffered = 0;
    let lastAt = started;
    const report = setInterval(() => {
      const now = performance.now();
      // Up to date first, so `offered` covers the whole interval and not up to the last tick.
      sendDue(now);
      const rate = ((acknowledged - lastAcked) * 1000) / (now - lastAt);
      print({
        type: 'progress',
        elapsedS: round((now - started) / 1000),
        acknowledged,
        rate: Math.round(rate),
        p50Ms: interval.percentileMs(0.5),
        p99Ms: interval.percentileMs(0.99),
        pending: clients.reduce((n, c) => n + c.pendingCount, 0),
        submitted,
        offered: Math.round(((submitted + shed - lastOffered) * 1000) / (now - lastAt)),
        shed,
        // The interval's latencies, so a parent can merge any window of several generators exactly.
        histogram: interval.encode(),
      });
      lastAcked = acknowledged;
      lastOffered = submitted + shed;
      lastAt = now;
      interval.reset();
    }, s.reportMs);

    // Every caller (COMMANDS done, DURATION_S, a signal's onStopped) waits for the one finish in
    // progress, so none exits the process before the acks file is flushed.
    function finish(reason: string): Promise<void> {
      finishing ??= finishOnce(reason);
      return finishing;
    }

    async function finishOnce(reason: string): Promise<void> {
      clearInterval(report);
      clearInterval(ticker);
      const seconds = (performance.now() - started) / 1000;
      print({
        type: 'summary',
        reason,
        seconds: round(seconds),
        clients: s.clients,
        submitted,
        acknowledged,
        throughput: Math.round(acknowledged / seconds),
        p50Ms: latencies.percentileMs(0.5),
        p99Ms: latencies.percentileMs(0.99),
        p999Ms: latencies.percentileMs(0.999),
        maxMs: latencies.maxMs,
        mode: profile === null ? 'closed' : 'open',
        offered: submitted + shed,
        shed,
        ...(profile === null ? {} : { profile: describeProfile(profile) }),
        histogram: latencies.encode(),
      });
      await new Promise<void>((resolve) => (acks === null ? resolve() : acks.end(resolve)));
      await node.shutdown();
      process.exit(0);
    }

    loadStarted = performance.now();
    if (s.durationS > 0) {
      setTimeout(() => {
        // What the profile asked for up to DURATION_S goes out before submitting stops.
        sendUpTo(s.durationS);
        if (s.drainS === 0 || acknowledged >= submitted) {
          void finish('duration reached');
          return;
        }
        draining = true;
        setTimeout(() => void finish('duration reached, drain timed out'), s.drainS * 1000);
      }, s.durationS * 1000);
    }
    if (profile === null) {
      for (const client of clients) for (let w = 0; w < s.window; w++) submit(client);
    } else {
      ticker = setInterval(() => sendDue(performance.now()), TICK_MS);
    }
    logger.info(
      profile === null
        ? { mode: 'closed', clients: s.clients, window: s.window, batchers: batchers.length }
        : {
            mode: 'open',
            clients: s.clients,
            profile: describeProfile(profile),
            maxOutstanding: s.maxOutstanding,
            batchers: batchers.length,
          },
      'load started',
    );
    return { node, onStopped: () => finish('stopped') };
  },
});

function print(line: object): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
