export type { AnnaClientOptions, AnnaErrorCode, LwwRead } from './client.ts';
export { ANNA_ROUTING_PORT, ANNA_STORAGE_PORT, AnnaClient, AnnaError } from './client.ts';
export type { KindSets, MemberKind, MembershipOptions } from './membership.ts';
export { Membership } from './membership.ts';
export type { LocalAnna, LocalAnnaFaults, LocalAnnaOptions, LocalAnnaStats } from './server.ts';
export { startLocalAnna } from './server.ts';
export type { Logger } from './sockets.ts';
export type {
  KeyAddress,
  KeyAddressRequest,
  KeyAddressResponse,
  KeyRequest,
  KeyResponse,
  KeyTuple,
  LwwValue,
} from './wire.ts';
export {
  AnnaErrorType,
  annaErrorName,
  decodeKeyAddressRequest,
  decodeKeyAddressResponse,
  decodeKeyRequest,
  decodeKeyResponse,
  decodeLwwValue,
  decodeSetValue,
  encodeKeyAddressRequest,
  encodeKeyAddressResponse,
  encodeKeyRequest,
  encodeKeyResponse,
  encodeLwwValue,
  encodeSetValue,
  LatticeType,
  latticeTypeName,
  RequestType,
} from './wire.ts';
