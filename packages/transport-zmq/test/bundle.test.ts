import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeBundle, splitBundle } from '../src/bundle.ts';

function split(message: Buffer, maxFrameBytes = 1024) {
  const frames: string[] = [];
  const invalid: string[] = [];
  splitBundle(
    message,
    maxFrameBytes,
    (f) => frames.push(Buffer.from(f).toString('hex')),
    (r) => invalid.push(r),
  );
  return { frames, invalid };
}

describe('bundles of frames', () => {
  it('round-trips any list of frames, empty frames included', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { minLength: 1, maxLength: 12 }), (frames) => {
        const { frames: back, invalid } = split(encodeBundle(frames));
        expect(invalid).toEqual([]);
        expect(back).toEqual(frames.map((f) => Buffer.from(f).toString('hex')));
      }),
      { numRuns: 2_000, seed: 7 },
    );
  });

  it('never throws on random bytes, and what it reads lies inside the message', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 96 }), (bytes) => {
        const message = Buffer.from(bytes);
        let read = 0;
        splitBundle(
          message,
          1024,
          (f) => {
            read += f.length + 4;
          },
          () => {},
        );
        expect(read).toBeLessThanOrEqual(message.length);
      }),
      { numRuns: 5_000, seed: 7 },
    );
  });

  it('names what is wrong: an empty message, a cut header, an overlong length, an oversized frame', () => {
    expect(split(Buffer.alloc(0)).invalid).toEqual([
      'empty message (expected frames, each after a 4-byte little-endian length)',
    ]);
    expect(split(Buffer.from([3, 0])).invalid).toEqual([
      'message cut short: 2 bytes at offset 0 where a 4-byte frame length was expected',
    ]);
    expect(split(Buffer.from([9, 0, 0, 0, 1])).invalid).toEqual([
      'frame length 9 at offset 0 runs past the end of the 5-byte message',
    ]);
    const big = encodeBundle([new Uint8Array(20), Uint8Array.of(0xab)]);
    expect(split(big, 16)).toEqual({
      frames: ['ab'],
      invalid: ['frame of 20 bytes exceeds maxFrameBytes 16'],
    });
  });
});
