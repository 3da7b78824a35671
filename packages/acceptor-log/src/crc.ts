import { crc32c as nativeCrc32c } from '@node-rs/crc32';

/**
 * CRC32C (Castagnoli) of `bytes`, the checksum of every record and file header. @node-rs/crc32
 * computes it with the CPU's CRC instructions; it takes a Buffer, so a plain Uint8Array is
 * wrapped (a view, not a copy).
 */
export function crc32c(bytes: Uint8Array): number {
  const buffer = Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return nativeCrc32c(buffer) >>> 0;
}
