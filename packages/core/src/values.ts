import type { Command, Value } from './messages.ts';

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function commandsEqual(a: Command, b: Command): boolean {
  return a.clientId === b.clientId && a.requestId === b.requestId && bytesEqual(a.payload, b.payload);
}

/** Equality of slot values: both noops, or batches of the same bytes. */
export function valuesEqual(a: Value, b: Value): boolean {
  if (a.kind === 'noop' || b.kind === 'noop') return a.kind === b.kind;
  return bytesEqual(a.batch, b.batch);
}

/**
 * Roughly the bytes a value takes in a frame, so phase-1 pages can stay far below the frame
 * limit without encoding anything twice.
 */
export function valueSizeEstimate(value: Value): number {
  return value.kind === 'noop' ? 4 : value.batch.length + 8;
}
