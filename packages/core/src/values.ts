import type { Command, Value } from './messages.ts';

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function commandsEqual(a: Command, b: Command): boolean {
  return a.clientId === b.clientId && a.requestId === b.requestId && bytesEqual(a.payload, b.payload);
}

/** Structural equality of slot values (noop, or the same commands in the same order). */
export function valuesEqual(a: Value, b: Value): boolean {
  if (a.kind === 'noop' || b.kind === 'noop') return a.kind === b.kind;
  if (a.commands.length !== b.commands.length) return false;
  for (let i = 0; i < a.commands.length; i++) {
    if (!commandsEqual(a.commands[i] as Command, b.commands[i] as Command)) return false;
  }
  return true;
}

/**
 * Roughly the bytes a value takes in a frame (payloads, client ids and per-field overhead), so
 * phase-1 pages can stay far below the frame limit without encoding anything twice.
 */
export function valueSizeEstimate(value: Value): number {
  if (value.kind === 'noop') return 4;
  let bytes = 4;
  for (const c of value.commands) bytes += c.payload.length + c.clientId.length + 16;
  return bytes;
}
