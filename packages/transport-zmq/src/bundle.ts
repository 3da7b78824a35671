/**
 * The transport's wire unit: one ZeroMQ message carries a bundle of frames, each prefixed by its
 * length (uint32, little-endian). A peer's writer bundles every frame one event-loop turn queued
 * for that peer, so a busy process pays ZeroMQ's per-message cost (a native message, a reference
 * released through an async callback, an external buffer on the receiving side) once per burst
 * instead of once per frame. A lone frame is a bundle of one.
 */

export const FRAME_HEADER_BYTES = 4;

/** Bytes a bundle of frames of these lengths takes. */
export function bundleBytes(frames: readonly Uint8Array[]): number {
  let bytes = 0;
  for (const f of frames) bytes += FRAME_HEADER_BYTES + f.length;
  return bytes;
}

/** One message holding `frames`, in order. */
export function encodeBundle(frames: readonly Uint8Array[]): Buffer {
  const out = Buffer.allocUnsafe(bundleBytes(frames));
  let offset = 0;
  for (const f of frames) {
    out.writeUInt32LE(f.length, offset);
    out.set(f, offset + FRAME_HEADER_BYTES);
    offset += FRAME_HEADER_BYTES + f.length;
  }
  return out;
}

/**
 * Hands each frame of `message` to `onFrame` (a view into `message`: whoever keeps bytes copies
 * them). A frame longer than `maxFrameBytes` is reported to `onInvalid` and skipped; a header
 * that is cut short or announces more bytes than are left makes the rest of the message
 * unreadable: reported once, and reading stops there.
 */
export function splitBundle(
  message: Buffer,
  maxFrameBytes: number,
  onFrame: (frame: Buffer) => void,
  onInvalid: (reason: string) => void,
): void {
  const total = message.length;
  if (total === 0) {
    onInvalid('empty message (expected frames, each after a 4-byte little-endian length)');
    return;
  }
  let offset = 0;
  while (offset < total) {
    if (offset + FRAME_HEADER_BYTES > total) {
      onInvalid(
        `message cut short: ${total - offset} bytes at offset ${offset} where a 4-byte frame length was expected`,
      );
      return;
    }
    const length = message.readUInt32LE(offset);
    const start = offset + FRAME_HEADER_BYTES;
    if (start + length > total) {
      onInvalid(`frame length ${length} at offset ${offset} runs past the end of the ${total}-byte message`);
      return;
    }
    if (length > maxFrameBytes) onInvalid(`frame of ${length} bytes exceeds maxFrameBytes ${maxFrameBytes}`);
    else onFrame(message.subarray(start, start + length));
    offset = start + length;
  }
}
