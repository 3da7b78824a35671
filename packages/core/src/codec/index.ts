export type { BatchDecodeResult, DecodeResult } from './codec.ts';
export {
  DecodeError,
  decodeBatch,
  decodeEnvelope,
  encodeBatch,
  encodeEnvelope,
  MAX_FRAME_BYTES,
} from './codec.ts';
