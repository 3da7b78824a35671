import {
  closeSync,
  existsSync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  statSync,
  truncateSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { type LogStorage, TEMP_SUFFIX } from './storage.ts';

export interface NodeStorageOptions {
  /** Stands in for `fs.writeSync` (tests give short and failing writes). */
  readonly writeSync?: (fd: number, buffer: Uint8Array, offset: number, length: number) => number;
  /**
   * `writeAtomic` syncs the file and its directory (default true). False (DATA_FSYNC=false):
   * still replaced whole by a rename, so a process crash leaves the old or the new file, but a
   * machine crash may lose the last replacement.
   */
  readonly syncAtomic?: boolean;
}

/**
 * The log's storage as files in directory `dir` (node:fs, synchronous). Files appended to are
 * kept open (O_APPEND) until `close`; `sync` is fdatasync, which also makes a grown file's size
 * durable; `writeAtomic` is write to `<name>.tmp`, fsync, rename, fsync of the directory.
 */
export function nodeStorage(dir: string, options: NodeStorageOptions = {}): LogStorage {
  const write = options.writeSync ?? writeSync;
  const syncAtomic = options.syncAtomic ?? true;
  const appendFds = new Map<string, number>();
  const readFds = new Map<string, number>();
  const pathOf = (name: string) => path.join(dir, name);

  const fdFor = (fds: Map<string, number>, name: string, flags: string): number => {
    let fd = fds.get(name);
    if (fd === undefined) {
      fd = openSync(pathOf(name), flags);
      fds.set(name, fd);
    }
    return fd;
  };
  /** Writes every byte: write(2) may write fewer than asked (a full disk, a signal), so it loops. */
  const writeAll = (fd: number, file: string, data: Uint8Array, length: number) => {
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        n = write(fd, data, done, length - done);
      } catch (err) {
        throw new Error(
          `${file}: writing ${length - done} bytes failed after ${done} of ${length}: ${message(err)}`,
          {
            cause: err,
          },
        );
      }
      // A write that makes no progress would loop for ever: the disk refuses, so stop here.
      if (!(n > 0))
        throw new Error(`${file}: a write of ${length - done} bytes wrote ${n} (after ${done} of ${length})`);
      done += n;
    }
  };
  const forget = (name: string) => {
    for (const fds of [appendFds, readFds]) {
      const fd = fds.get(name);
      if (fd !== undefined) closeSync(fd);
      fds.delete(name);
    }
  };
  const syncDirectory = (d: string) => {
    const fd = openSync(d, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  };

  return {
    location: dir,
    pathOf,
    list: () => (existsSync(dir) ? readdirSync(dir) : []),
    create: () => {
      const first = mkdirSync(dir, { recursive: true });
      if (first === undefined) return;
      // Each directory made is an entry of its parent: sync the parents, deepest first, up to
      // the one that already existed, so the log's directory survives a crash of the machine.
      for (let d = path.resolve(dir); ; d = path.dirname(d)) {
        syncDirectory(path.dirname(d));
        if (d === path.resolve(first)) break;
      }
    },
    size: (name) => {
      const fd = appendFds.get(name) ?? readFds.get(name);
      return fd === undefined ? statSync(pathOf(name)).size : fstatSync(fd).size;
    },
    read: (name, position, into, length) => {
      const fd = fdFor(readFds, name, 'r');
      let done = 0;
      while (done < length) {
        const n = readSync(fd, into, done, length - done, position + done);
        if (n === 0) break;
        done += n;
      }
      return done;
    },
    append: (name, data, length) => writeAll(fdFor(appendFds, name, 'a'), pathOf(name), data, length),
    sync: (name) => {
      const open = appendFds.get(name);
      const fd = open ?? openSync(pathOf(name), 'r');
      try {
        fdatasyncSync(fd);
      } catch (err) {
        throw new Error(`${pathOf(name)}: fdatasync failed: ${message(err)}`, { cause: err });
      } finally {
        if (open === undefined) closeSync(fd);
      }
    },
    truncate: (name, size) => truncateSync(pathOf(name), size),
    writeAtomic: (name, data) => {
      const temp = pathOf(name + TEMP_SUFFIX);
      const fd = openSync(temp, 'w');
      try {
        writeAll(fd, temp, data, data.length);
        if (syncAtomic) fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      forget(name); // descriptors of the file being replaced would read the old one
      renameSync(temp, pathOf(name));
      if (syncAtomic) syncDirectory(dir);
    },
    close: () => {
      for (const name of new Set([...appendFds.keys(), ...readFds.keys()])) forget(name);
    },
  };
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
