/**
 * Closed-loop put load on etcd through its v3 gRPC API (`/etcdserverpb.KV/Put`, from
 * proto/etcd-kv.proto): N clients, each with one put outstanding, the next sent as the reply
 * comes, as the Paxos load generator's closed-loop clients do. Latencies go into a
 * `LatencyHistogram` (@paxos/latency), so percentiles are defined as for the Paxos clients.
 */
import { randomBytes } from 'node:crypto';
import { credentials, Client as GrpcClient, type ServiceError } from '@grpc/grpc-js';
import { LatencyHistogram } from '@paxos/latency';
import protobuf from 'protobufjs';
import { etcdKvSchema } from './etcd-kv.generated.ts';

const root = protobuf.Root.fromJSON(etcdKvSchema as unknown as protobuf.INamespace);
const PutRequest = root.lookupType('etcdserverpb.PutRequest');
const PutResponse = root.lookupType('etcdserverpb.PutResponse');
const PUT_METHOD = '/etcdserverpb.KV/Put';

export interface EtcdPut {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

export function encodePut(put: EtcdPut): Buffer {
  const bytes = PutRequest.encode(PutRequest.fromObject(put)).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The store's revision a put was applied at (0 when the response has no header). */
export function decodePutRevision(frame: Buffer): bigint {
  const m = PutResponse.toObject(PutResponse.decode(frame), { longs: BigInt }) as {
    header?: { revision?: bigint };
  };
  return m.header?.revision ?? 0n;
}

/** One gRPC channel per etcd member; a client's puts go to one member. */
export class EtcdKv {
  private readonly channels: GrpcClient[];

  private constructor(readonly endpoints: readonly string[]) {
    this.channels = endpoints.map((e) => new GrpcClient(e, credentials.createInsecure()));
  }

  /** Connects to every endpoint (`host:port`), or throws naming the one that did not answer. */
  static async connect(endpoints: readonly string[], timeoutMs = 10_000): Promise<EtcdKv> {
    const kv = new EtcdKv(endpoints);
    try {
      await Promise.all(
        kv.channels.map(
          (c, i) =>
            new Promise<void>((resolve, reject) =>
              c.waitForReady(Date.now() + timeoutMs, (err) =>
                err === undefined
                  ? resolve()
                  : reject(new Error(`etcd at ${endpoints[i]}: no gRPC connection (${err.message})`)),
              ),
            ),
        ),
      );
    } catch (err) {
      kv.close();
      throw err;
    }
    return kv;
  }

  /**
   * One put through member `member`'s channel; `done` gets the revision it was applied at, or
   * the error.
   */
  put(member: number, put: EtcdPut, done: (err: ServiceError | null, revision: bigint) => void): void {
    const channel = this.channels[member % this.channels.length] as GrpcClient;
    channel.makeUnaryRequest(
      PUT_METHOD,
      encodePut,
      decodePutRevision,
      put,
      { deadline: Date.now() + 10_000 },
      (err, revision) => done(err ?? null, revision ?? 0n),
    );
  }

  close(): void {
    for (const c of this.channels) c.close();
  }
}

export interface EtcdLoadOptions {
  readonly clients: number;
  readonly durationS: number;
  /** Bytes of each put's value: the Paxos clients' PAYLOAD_BYTES. */
  readonly payloadBytes: number;
  /** Client i puts to the key `<keyPrefix><i>` again and again (etcd's own `benchmark put` keeps one key). */
  readonly keyPrefix: string;
}

/** What a run measured; the fields a Paxos load generator's summary has, where they apply. */
export interface EtcdLoadSummary {
  readonly clients: number;
  readonly seconds: number;
  readonly submitted: number;
  readonly acknowledged: number;
  /** Puts/s acknowledged. */
  readonly throughput: number;
  /** Puts that failed (an error status, or a response without a revision). */
  readonly errors: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly p999Ms: number | null;
  readonly maxMs: number | null;
  /** This process's CPU over the run, percent of one core: the load generator's own cost. */
  readonly driverCpuPercent: number;
  readonly histogram: string;
}

/**
 * `o.clients` closed-loop clients for `o.durationS`, client i through member i mod members (as
 * etcd's client balances across its endpoints). Replies that come after the end are neither
 * counted nor followed by another put; resolves once every client's last put has come back.
 */
export function runEtcdLoad(kv: EtcdKv, o: EtcdLoadOptions): Promise<EtcdLoadSummary> {
  const latencies = new LatencyHistogram();
  let submitted = 0;
  let acknowledged = 0;
  let errors = 0;
  let finished = false;
  let outstanding = 0;
  const keys = Array.from({ length: o.clients }, (_, i) => Buffer.from(`${o.keyPrefix}${i}`));
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  let seconds = 0;
  let cpuMicros = 0;
  return new Promise((resolve) => {
    const settle = () => {
      if (!finished || outstanding > 0) return;
      const summary = latencies.summary();
      resolve({
        clients: o.clients,
        seconds: Math.round(seconds * 1000) / 1000,
        submitted,
        acknowledged,
        throughput: Math.round(acknowledged / seconds),
        errors,
        p50Ms: summary.p50Ms,
        p99Ms: summary.p99Ms,
        p999Ms: summary.p999Ms,
        maxMs: summary.maxMs,
        driverCpuPercent: Math.round((cpuMicros / (seconds * 1e6)) * 1000) / 10,
        histogram: latencies.encode(),
      });
    };
    const send = (i: number) => {
      if (finished) {
        settle();
        return;
      }
      submitted++;
      outstanding++;
      const sentAt = performance.now();
      kv.put(i, { key: keys[i] as Buffer, value: randomBytes(o.payloadBytes) }, (err, revision) => {
        outstanding--;
        if (!finished) {
          if (err === null && revision > 0n) {
            acknowledged++;
            latencies.recordMs(performance.now() - sentAt);
          } else errors++;
        }
        send(i);
      });
    };
    setTimeout(() => {
      finished = true;
      seconds = (performance.now() - started) / 1000;
      const cpu = process.cpuUsage(cpuStarted);
      cpuMicros = cpu.user + cpu.system;
      settle();
    }, o.durationS * 1000);
    for (let i = 0; i < o.clients; i++) send(i);
  });
}
