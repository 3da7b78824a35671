/**
 * The log's two refusals. Both are one line: a supervisor's log shows what is wrong and where
 * without a stack trace, and neither goes away by restarting, so callers stop rather than retry.
 */

/** A record or file of the log is damaged where a crash cannot have left it: start-up must stop. */
export class LogCorruptError extends Error {
  override readonly name = 'LogCorruptError';

  constructor(
    /** The damaged file, as the storage names it (a path for files on disk). */
    readonly file: string,
    /** Byte offset in `file` of the record or header that is damaged. */
    readonly offset: number,
    /** What was found. */
    readonly problem: string,
    /** What a sound log holds there. */
    readonly expected: string,
  ) {
    super(`${file} at byte ${offset}: ${problem} (expected ${expected})`);
  }
}

/**
 * The directory is not this acceptor's log: a log of another identity (cluster key, group,
 * acceptor), or files that belong to no acceptor log. Starting anyway would let one acceptor
 * answer with another's promises and votes, so it is a configuration error (exit 2).
 */
export class LogIdentityError extends Error {
  override readonly name = 'LogIdentityError';
}
