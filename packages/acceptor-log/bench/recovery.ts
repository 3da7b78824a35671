/**
 * Restart time against history length, on real files: for each count of segments, writes that
 * much synthetic history (1 KiB values, the watermark 1000 slots behind, a new ballot every
 * 100000 slots), then times `AcceptorLog.open` (bounded recovery) and, for contrast, a full
 * replay of every record (`scanLog`). Prints one JSON line per count.
 *
 *   pnpm --filter @paxos/acceptor-log exec tsx bench/recovery.ts [segmentMiB=64] [counts=1,10,100]
 *
 * The files were just written, so most of what recovery reads comes from the page cache:
 * `recoveryMsBest` (of three opens) is the work recovery does; `recoveryMsFirst` may include
 * reads from the disk.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AcceptorLog, nodeStorage, scanLog } from '../src/index.ts';

const segmentMiB = Number(process.argv[2] ?? 64);
const counts = (process.argv[3] ?? '1,10,100').split(',').map(Number);
const identity = { cluster: 'bench', groupId: 0, acceptorId: 0 };
const config = { id: 1, groups: [0], acceptorIds: [] };
const batch = new Uint8Array(1024).map((_, i) => i & 0xff);

for (const segments of counts) {
  const root = mkdtempSync(path.join(tmpdir(), 'paxos-recovery-'));
  const dir = path.join(root, 'log');
  try {
    const segmentBytes = segmentMiB * 1024 * 1024;
    const { log } = AcceptorLog.open(nodeStorage(dir), { identity, fsync: false, segmentBytes });
    let slot = 0;
    let round = 1;
    const writeStart = performance.now();
    const accept = () => {
      if (slot % 100_000 === 0) log.promised({ round: ++round, proposerId: 0 }, config);
      log.accepted(
        { slot, ballot: { round, proposerId: 0 }, value: { kind: 'batch', batch } },
        Math.max(0, slot - 1000),
        config,
      );
      if (++slot % 64 === 0) log.commit(); // bursts of 64 records
    };
    // `segments - 1` full segments, then half of the last one.
    while (log.segment < segments - 1) accept();
    for (let i = 0; i < segmentBytes / 2 / 1060; i++) accept();
    log.close();
    const writeMs = performance.now() - writeStart;

    // Opened three times: the first may find part of the files out of the page cache (they were
    // just written, and writeback competes); the best of the three is the work recovery does.
    const heapBefore = process.memoryUsage().heapUsed;
    const times: number[] = [];
    const open = () => {
      const t0 = performance.now();
      const opened = AcceptorLog.open(nodeStorage(dir), { identity, fsync: false, segmentBytes });
      times.push(performance.now() - t0);
      return opened;
    };
    open().log.close();
    open().log.close();
    const opened = open();
    const heapAfter = process.memoryUsage().heapUsed;
    opened.log.close();

    const counter = { bytesRead: 0 };
    const t1 = performance.now();
    let records = 0;
    for (const item of scanLog(nodeStorage(dir), { counter })) if (item.type === 'record') records++;
    const fullMs = performance.now() - t1;

    console.log(
      JSON.stringify({
        segments: opened.recovery.segments,
        segmentMiB,
        slots: slot,
        historyMiB: Math.round(counter.bytesRead / 2 ** 20),
        recoveryMsFirst: Math.round(times[0] ?? 0),
        recoveryMsBest: Math.round(Math.min(...times)),
        recoveryBytesRead: opened.recovery.bytesRead,
        segmentsRead: opened.recovery.segmentsRead,
        recoveredEntries: [...opened.state.accepted].length,
        heapGrowthMiB: Math.round((heapAfter - heapBefore) / 2 ** 20),
        fullReplayMs: Math.round(fullMs),
        fullReplayRecords: records,
        writeMs: Math.round(writeMs),
      }),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
