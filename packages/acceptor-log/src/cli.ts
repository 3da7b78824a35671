/**
 * `pnpm log dump <dir-or-file> [--from-slot N] [--json]`: prints an acceptor log's records,
 * streamed (a log of any size is printed in bounded memory), read-only (a torn tail is reported,
 * not cut off). Damage prints the records before it, then one line naming the file and offset,
 * and exits 1; a bad argument exits 2.
 */
import { once } from 'node:events';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { type Ballot, type ConfigStamp, formatBallot } from '@paxos/core';
import { Command, InvalidArgumentError } from 'commander';
import { type Checkpoint, STATE_FILE, segmentIndex } from './format.ts';
import { nodeStorage } from './node-storage.ts';
import { readState, type ScanItem, scanLog } from './scan.ts';

/** A mistake in how the command was called: one line, exit 2. */
class UsageError extends Error {}

interface DumpOptions {
  readonly fromSlot?: number;
  readonly json?: boolean;
}

const out = {
  chunk: '',
  /** Lines are gathered and written 64 KiB at a time, waiting for a slow reader (a pager). */
  async line(text: string): Promise<void> {
    this.chunk += `${text}\n`;
    if (this.chunk.length >= 64 * 1024) await this.flush();
  },
  async flush(): Promise<void> {
    const chunk = this.chunk;
    this.chunk = '';
    if (chunk.length > 0 && !process.stdout.write(chunk)) await once(process.stdout, 'drain');
  },
};

const config = (c: ConfigStamp | null) => (c === null ? 'none' : `${c.id} [${c.groups.join(',')}]`);
const ballot = (b: Ballot) => formatBallot(b);

function stateLine(file: string, c: Checkpoint, json: boolean): string {
  if (json) return JSON.stringify({ type: 'state', file, ...c });
  const live = c.live.map((l) => `${l.segment} (slots up to ${l.maxSlot})`).join(', ') || 'none';
  return `${file}: state through segment ${c.through}  promised ${ballot(c.promised)}  watermark ${c.watermark}  config ${config(c.config)}${c.retired ? '  retired' : ''}  live segments ${live}`;
}

function itemLine(item: ScanItem, json: boolean): string {
  if (item.type === 'segment') {
    const h = item.header;
    return json
      ? JSON.stringify({ type: 'segment', file: item.file, ...h })
      : `${item.file}: segment ${h.segment} of cluster "${h.cluster}" group ${h.groupId} acceptor ${h.acceptorId}`;
  }
  const r = item.record;
  const where = `${path.basename(item.file)} @${item.offset}`;
  const fields = {
    type: 'record',
    segment: item.segment,
    offset: item.offset,
    kind: r.kind,
    ballot: r.ballot,
  };
  if (r.kind === 'promise') {
    return json
      ? JSON.stringify({ ...fields, config: r.config })
      : `${where}  promise  ballot ${ballot(r.ballot)}  config ${config(r.config)}`;
  }
  if (r.kind === 'watermark') {
    return json
      ? JSON.stringify({ ...fields, watermark: r.watermark, config: r.config })
      : `${where}  watermark  ballot ${ballot(r.ballot)}  watermark ${r.watermark}  config ${config(r.config)}`;
  }
  if (r.kind === 'retired') {
    return json
      ? JSON.stringify({ ...fields, groupId: r.groupId, acceptorId: r.acceptorId })
      : `${where}  retired  ballot ${ballot(r.ballot)}  group ${r.groupId} acceptor ${r.acceptorId}`;
  }
  const valueBytes = r.value.kind === 'noop' ? 0 : r.value.batch.length;
  return json
    ? JSON.stringify({
        ...fields,
        slot: r.slot,
        value: r.value.kind,
        valueBytes,
        watermark: r.watermark,
        config: r.config,
      })
    : `${where}  accept   ballot ${ballot(r.ballot)}  slot ${r.slot}  value ${r.value.kind === 'noop' ? 'noop' : `${valueBytes} B`}  watermark ${r.watermark}  config ${config(r.config)}`;
}

async function dump(target: string, o: DumpOptions): Promise<void> {
  if (!existsSync(target))
    throw new UsageError(
      `${target}: no such file or directory (expected an acceptor log directory or one of its files)`,
    );
  const isDir = statSync(target).isDirectory();
  const storage = nodeStorage(isDir ? target : path.dirname(target));
  const json = o.json === true;
  const name = path.basename(target);
  try {
    if (isDir || name === STATE_FILE) {
      const state = readState(storage);
      if (state !== null) await out.line(stateLine(storage.pathOf(STATE_FILE), state, json));
      if (!isDir) return;
    }
    const index = isDir ? null : segmentIndex(name);
    if (!isDir && index === null)
      throw new UsageError(
        `${target}: not a file of an acceptor log (expected <12-digit index>.seg or "state")`,
      );
    let records = 0;
    let accepts = 0;
    let watermarks = 0;
    let retirements = 0;
    const scan = scanLog(storage, index === null ? {} : { segments: [index] });
    let r = scan.next();
    for (; !r.done; r = scan.next()) {
      const item = r.value;
      if (item.type === 'record') {
        records++;
        if (item.record.kind === 'accept') {
          accepts++;
          if (o.fromSlot !== undefined && item.record.slot < o.fromSlot) continue;
        } else if (item.record.kind === 'watermark') watermarks++;
        else if (item.record.kind === 'retired') retirements++;
      }
      await out.line(itemLine(item, json));
    }
    const { tornBytes, tornAt } = r.value;
    if (json)
      await out.line(
        JSON.stringify({ type: 'end', records, accepts, watermarks, retirements, tornBytes, tornAt }),
      );
    else {
      // Watermarks and retirements are counted only where a log has them (format version 2).
      const promises = records - accepts - watermarks - retirements;
      const extra = `${watermarks > 0 ? `, ${watermarks} watermarks` : ''}${retirements > 0 ? `, ${retirements} retired` : ''}`;
      await out.line(`${records} records (${accepts} accepts, ${promises} promises${extra})`);
      if (tornAt !== null)
        await out.line(
          `torn tail: ${tornBytes} bytes at ${tornAt.file} @${tornAt.offset} (an acceptor cuts them off when it starts)`,
        );
    }
  } finally {
    await out.flush();
    storage.close();
  }
}

function slotArgument(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n))
    throw new InvalidArgumentError('expected an integer >= 0');
  return n;
}

const program = new Command('pnpm log')
  .description("Reads an acceptor's log (DATA_DIR/<cluster>-g<group>-a<acceptor>)")
  .version(
    (createRequire(import.meta.url)('../package.json') as { version: string }).version,
    '-V, --version',
    'print the version and exit',
  )
  .showHelpAfterError(false);
program
  .command('dump')
  .description(
    'print the records of a log: segment, offset, kind (promise, accept, watermark, retired), ballot, slot, value size, watermark, config',
  )
  .argument('<path>', 'a log directory, or one of its files (a segment or the state file)')
  .option('--from-slot <n>', 'leave out accepts of slots below n', slotArgument)
  .option('--json', 'one JSON object per line: state, segment, record, end')
  .action(dump);
program.exitOverride();
// `pnpm log dump x | head` closes the pipe early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? 0 : 1));

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const code = (err as { code?: string }).code;
  if (code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help')
    process.exit(0);
  if (typeof code === 'string' && code.startsWith('commander.')) process.exit(2);
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`pnpm log: ${message}\n`);
  // Damage (LogCorruptError) or a log of mixed identities (LogIdentityError): 1.
  process.exit(err instanceof UsageError ? 2 : 1);
}
