export type { DecodeResult } from './codec.ts';
export { DecodeError, decodeEnvelope, encodeEnvelope, MAX_FRAME_BYTES } from './codec.ts';
