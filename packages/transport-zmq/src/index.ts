export { bundleBytes, encodeBundle, FRAME_HEADER_BYTES, splitBundle } from './bundle.ts';
export { assertEndpoint, type ParsedEndpoint, parseEndpoint } from './endpoint.ts';
export { waitUntilReleased } from './port.ts';
export { measureRawZmq, type RawZmqOptions, type RawZmqResult } from './raw.ts';
export {
  type DecodeResult,
  type DropReason,
  type TransportLogger,
  type TransportOptions,
  type TransportStats,
  ZmqTransport,
} from './transport.ts';
