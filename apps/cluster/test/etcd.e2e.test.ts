import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assertPortsFree } from '../src/cluster.ts';
import { EtcdCluster, findEtcd, planEtcdCluster } from '../src/etcd-cluster.ts';
import { EtcdKv, runEtcdLoad } from '../src/etcd-load.ts';

const etcd = findEtcd();
const workDir = mkdtempSync(path.join(os.tmpdir(), 'paxos-etcd-test-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

/** `address:port` of every TCP socket `pid` listens on (from /proc). */
function listening(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m !== null) inodes.add(m[1] as string);
    } catch {
      // closed meanwhile
    }
  }
  const out: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').trim().split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // st 0A: LISTEN; local_address is hex, the IPv4 address little-endian.
      if (f[3] !== '0A' || !inodes.has(f[9] as string)) continue;
      const [hex, port] = (f[1] as string).split(':') as [string, string];
      const address =
        hex.length === 8
          ? (hex.match(/../g) as string[])
              .reverse()
              .map((b) => Number.parseInt(b, 16))
              .join('.')
          : hex;
      out.push(`${address}:${Number.parseInt(port, 16)}`);
    }
  }
  return out.sort();
}

// Its own ports, away from the benchmark's (32600–32612 by default).
describe.skipIf('missing' in etcd)('a three-member etcd on loopback', () => {
  it('listens only on 127.0.0.1, takes closed-loop puts through gRPC, and is gone after stop', async () => {
    const bin = (etcd as { bin: string }).bin;
    const members = planEtcdCluster({
      clientBasePort: 32700,
      peerBasePort: 32710,
      dataDir: path.join(workDir, 'data'),
      token: `test-${process.pid}`,
    });
    const cluster = await EtcdCluster.start(bin, members, path.join(workDir, 'logs'));
    try {
      const pids = cluster.pids as number[];
      expect(pids.every((p) => typeof p === 'number')).toBe(true);
      for (const [i, pid] of pids.entries()) {
        expect(listening(pid)).toEqual([`127.0.0.1:${32700 + i}`, `127.0.0.1:${32710 + i}`]);
      }
      const kv = await EtcdKv.connect(cluster.endpoints);
      try {
        const s = await runEtcdLoad(kv, { clients: 6, durationS: 1, payloadBytes: 16, keyPrefix: 'test/' });
        expect(s.errors).toBe(0);
        expect(s.acknowledged).toBeGreaterThan(0);
        expect(s.throughput).toBeGreaterThan(0);
        expect(s.p50Ms).toBeGreaterThan(0);
        expect(s.p99Ms as number).toBeGreaterThanOrEqual(s.p50Ms as number);
        // Every client kept one put outstanding: the last ones came back after the end, uncounted.
        expect(s.submitted).toBeGreaterThanOrEqual(s.acknowledged + 6);
      } finally {
        kv.close();
      }
    } finally {
      await cluster.stop();
    }
    await assertPortsFree('127.0.0.1', [32700, 32701, 32702, 32710, 32711, 32712]);
    for (const pid of cluster.pids as number[]) expect(existsSync(`/proc/${pid}`)).toBe(false);
  });
});
