/**
 * Small byte arrays carved out of shared 8 KiB slabs, as Node's Buffer pool does: a typed array
 * with its own ArrayBuffer costs a backing-store allocation and garbage-collector bookkeeping,
 * which at tens of thousands of frames per second dominated the cost of copying them. Arrays of
 * half a slab or more get their own memory. A slab lives as long as any array carved from it.
 */
const SLAB_BYTES = 8 * 1024;
const POOLED_BELOW = SLAB_BYTES / 2;

let slab = new Uint8Array(SLAB_BYTES);
let used = 0;

/** A copy of `bytes` that never aliases them (a view of a slab for small sizes). */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  const size = bytes.length;
  if (size >= POOLED_BELOW) return bytes.slice();
  if (used + size > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    used = 0;
  }
  const out = slab.subarray(used, used + size);
  out.set(bytes);
  // Keep views 8-byte aligned, as Buffer's pool does.
  used = (used + size + 7) & ~7;
  return out;
}
