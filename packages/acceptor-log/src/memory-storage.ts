import { type LogStorage, TEMP_SUFFIX } from './storage.ts';

/** One file: what a reader sees now, and what a crash leaves of it. */
interface Inode {
  bytes: Uint8Array;
  length: number;
  /** Bytes `[0, durableLength)` of `bytes` survive a crash … */
  durableLength: number;
  /** … unless an unsynced truncate cut into them: then this copy of them does. */
  durableCopy: Uint8Array | null;
}

/** What the storage was asked to do, for tests that count reads, writes and syncs. */
export interface StorageStats {
  reads: number;
  bytesRead: number;
  appends: number;
  bytesAppended: number;
  syncs: number;
  atomicWrites: number;
}

export interface CrashOptions {
  /**
   * How many of the `unsynced` bytes appended to `name` since its last sync reach the disk
   * anyway (a torn write); 0, the default, loses them all.
   */
  readonly keepUnsynced?: (name: string, unsynced: number) => number;
}

/**
 * The log's storage in memory, for tests and the simulator, with the crash semantics of a POSIX
 * file system at its most pessimistic: `crash()` keeps of each file only what `sync` made
 * durable, and of the directory only the entries a directory sync made durable (`writeAtomic`
 * and `create` sync it; a file created by `append` alone is lost). Nothing here is shared
 * between instances: each simulated acceptor has its own disk.
 */
export class MemoryStorage implements LogStorage {
  readonly stats: StorageStats = {
    reads: 0,
    bytesRead: 0,
    appends: 0,
    bytesAppended: 0,
    syncs: 0,
    atomicWrites: 0,
  };
  private entries = new Map<string, Inode>();
  private durableEntries = new Map<string, Inode>();
  private exists = false;

  constructor(readonly location = 'memory') {}

  pathOf(name: string): string {
    return `${this.location}/${name}`;
  }

  list(): string[] {
    return [...this.entries.keys()];
  }

  create(): void {
    this.exists = true;
  }

  size(name: string): number {
    return this.inode(name).length;
  }

  read(name: string, position: number, into: Uint8Array, length: number): number {
    const inode = this.inode(name);
    const n = Math.max(0, Math.min(length, inode.length - position));
    into.set(inode.bytes.subarray(position, position + n), 0);
    this.stats.reads++;
    this.stats.bytesRead += n;
    return n;
  }

  append(name: string, data: Uint8Array, length: number): void {
    if (!this.exists) throw new Error(`${this.pathOf(name)}: no such directory`);
    let inode = this.entries.get(name);
    if (inode === undefined) {
      inode = { bytes: new Uint8Array(0), length: 0, durableLength: 0, durableCopy: null };
      this.entries.set(name, inode);
    }
    const needed = inode.length + length;
    if (needed > inode.bytes.length) {
      const grown = new Uint8Array(Math.max(needed, inode.bytes.length * 2, 4096));
      grown.set(inode.bytes.subarray(0, inode.length));
      inode.bytes = grown;
    }
    inode.bytes.set(data.subarray(0, length), inode.length);
    inode.length = needed;
    this.stats.appends++;
    this.stats.bytesAppended += length;
  }

  sync(name: string): void {
    const inode = this.inode(name);
    inode.durableLength = inode.length;
    inode.durableCopy = null;
    this.stats.syncs++;
  }

  truncate(name: string, size: number): void {
    const inode = this.inode(name);
    if (size >= inode.length) return;
    // Later appends would overwrite bytes a crash must still find: keep them aside until a sync.
    if (size < inode.durableLength && inode.durableCopy === null)
      inode.durableCopy = inode.bytes.slice(0, inode.durableLength);
    inode.length = size;
  }

  writeAtomic(name: string, data: Uint8Array): void {
    if (!this.exists) throw new Error(`${this.pathOf(name)}: no such directory`);
    const bytes = data.slice();
    this.entries.delete(name + TEMP_SUFFIX);
    this.entries.set(name, { bytes, length: bytes.length, durableLength: bytes.length, durableCopy: null });
    // The directory sync makes every entry as it is now durable, not only this one.
    this.durableEntries = new Map(this.entries);
    this.stats.atomicWrites++;
  }

  close(): void {}

  /**
   * The machine stops: every file goes back to what was synced of it (plus what `keepUnsynced`
   * lets through), and the directory to its last synced listing.
   */
  crash(options: CrashOptions = {}): void {
    const entries = new Map<string, Inode>();
    for (const [name, inode] of this.durableEntries) {
      if (inode.durableCopy !== null) {
        inode.bytes = inode.durableCopy;
        inode.length = inode.durableCopy.length;
      } else {
        const unsynced = Math.max(0, inode.length - inode.durableLength);
        const kept = Math.min(unsynced, Math.max(0, Math.floor(options.keepUnsynced?.(name, unsynced) ?? 0)));
        inode.length = inode.durableLength + kept;
      }
      inode.durableLength = inode.length;
      inode.durableCopy = null;
      entries.set(name, inode);
    }
    this.entries = entries;
    this.durableEntries = new Map(entries);
  }

  /** A copy of a file's bytes as a reader sees them now. */
  contents(name: string): Uint8Array {
    const inode = this.inode(name);
    return inode.bytes.slice(0, inode.length);
  }

  /** Damages the medium: flips bit `bit` of byte `offset`, in what is read and in what a crash keeps. */
  flipBit(name: string, offset: number, bit = 0): void {
    const inode = this.inode(name);
    if (offset >= inode.length) throw new RangeError(`${this.pathOf(name)}: byte ${offset} is past its end`);
    const mask = 1 << (bit & 7);
    inode.bytes[offset] = (inode.bytes[offset] as number) ^ mask;
    if (inode.durableCopy !== null && offset < inode.durableCopy.length)
      inode.durableCopy[offset] = (inode.durableCopy[offset] as number) ^ mask;
  }

  private inode(name: string): Inode {
    const inode = this.entries.get(name);
    if (inode === undefined) throw new Error(`${this.pathOf(name)}: no such file`);
    return inode;
  }
}
