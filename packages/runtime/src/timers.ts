/**
 * The timers a node keeps for its roles, by key. A positive delay is a setTimeout. A zero delay
 * means "once the messages at hand are handled" (a batcher flushing what one read burst brought):
 * set while a receive burst is delivered, it fires when that burst ends (`burstEnded`, from the
 * transport), in the same event-loop turn, so what it sends leaves with the burst's replies; set
 * anywhere else, or if no burst ends first, a setImmediate fires it after the current turn,
 * without setTimeout's 1 ms floor.
 */
export class RoleTimers {
  private readonly pending = new Map<string, { timeout?: NodeJS.Timeout; immediate?: NodeJS.Immediate }>();
  /** Zero-delay timers, by key, with the function that fires each. */
  private readonly dueAtBurstEnd = new Map<string, () => void>();

  /** Arms (or re-arms, replacing) the timer `key`; `fire` runs once, unless it is cleared first. */
  set(key: string, delayMs: number, fire: () => void): void {
    this.clear(key);
    const once = () => {
      this.clear(key);
      fire();
    };
    if (delayMs > 0) {
      this.pending.set(key, { timeout: setTimeout(once, delayMs) });
      return;
    }
    this.pending.set(key, { immediate: setImmediate(once) });
    this.dueAtBurstEnd.set(key, once);
  }

  clear(key: string): void {
    this.dueAtBurstEnd.delete(key);
    const timer = this.pending.get(key);
    if (timer === undefined) return;
    if (timer.timeout !== undefined) clearTimeout(timer.timeout);
    if (timer.immediate !== undefined) clearImmediate(timer.immediate);
    this.pending.delete(key);
  }

  clearAll(): void {
    for (const key of [...this.pending.keys()]) this.clear(key);
  }

  /** A receive burst has been delivered: the zero-delay timers set until now fire. */
  burstEnded(): void {
    if (this.dueAtBurstEnd.size === 0) return;
    // One that an earlier one cleared or set anew is not this burst's: skipped (a new one waits
    // for the next burst's end, or its setImmediate).
    for (const [key, once] of [...this.dueAtBurstEnd]) if (this.dueAtBurstEnd.get(key) === once) once();
  }
}
