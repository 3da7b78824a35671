/**
 * The log's refusals. Each is one line: a supervisor's log shows what is wrong and where
 * without a stack trace, and none goes away by restarting, so callers stop rather than retry.
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

/**
 * `create: 'never'`: the directory holds no log (it is missing or empty), but the caller says
 * this acceptor has run before. Creating one would let it answer having forgotten its promises
 * and votes.
 */
export class LogMissingError extends Error {
  override readonly name = 'LogMissingError';

  constructor(
    /** The log's directory, as the storage names it. */
    readonly location: string,
    /** Whose files were expected: an acceptor's log (default) or a matchmaker's state. */
    readonly role: 'acceptor' | 'matchmaker' = 'acceptor',
  ) {
    super(
      role === 'acceptor'
        ? `${location} holds no acceptor log (expected one: this acceptor has run before)`
        : `${location} holds no matchmaker state (expected one: this matchmaker has run before)`,
    );
  }
}

/**
 * `create: 'always'`: the directory already holds a log, and a new one is never written over it
 * (that would discard promises and votes that may still count).
 */
export class LogExistsError extends Error {
  override readonly name = 'LogExistsError';

  constructor(
    /** The log's directory, as the storage names it. */
    readonly location: string,
    /** Segment files it holds. */
    readonly segments: number,
    /** Whether it holds a state file (a checkpoint, or a matchmaker's state). */
    readonly hasState: boolean,
    /** Whose files were found: an acceptor's log (default) or a matchmaker's state. */
    readonly role: 'acceptor' | 'matchmaker' = 'acceptor',
  ) {
    super(
      role === 'acceptor'
        ? `${location} already holds an acceptor log (${segments} segment${segments === 1 ? '' : 's'}${hasState ? ' and a state file' : ''}): a new log is not written over it`
        : `${location} already holds a matchmaker state: a new one is not written over it`,
    );
  }
}
