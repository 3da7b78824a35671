/**
 * Anna's wire messages (proto/anna.proto) as plain TypeScript objects, with encoders and
 * decoders built on protobufjs.
 *
 * - The protobufjs Root comes from the generated JSON descriptor (`schema.generated.ts`), so
 *   nothing is read from disk at runtime.
 * - Every decoder returns `undefined` for a frame that is not a valid message instead of
 *   throwing: frames come from the network.
 * - Decoded objects carry every field (proto3 defaults filled in); `bytes` fields are fresh
 *   copies that never alias the frame's buffer; enum fields are plain numbers (an enum value
 *   this file does not know stays a number, as proto3 requires).
 */

import protobuf from 'protobufjs';
import { annaSchema } from './schema.generated.ts';

/** `RequestType` of anna.proto. */
export const RequestType = { RT_UNSPECIFIED: 0, GET: 1, PUT: 2 } as const;
export type RequestType = (typeof RequestType)[keyof typeof RequestType];

/** `LatticeType` of anna.proto: every lattice Anna defines. */
export const LatticeType = {
  NONE: 0,
  LWW: 1,
  SET: 2,
  SINGLE_CAUSAL: 3,
  MULTI_CAUSAL: 4,
  ORDERED_SET: 5,
  PRIORITY: 6,
} as const;
export type LatticeType = (typeof LatticeType)[keyof typeof LatticeType];

/** `AnnaError` of anna.proto (named `AnnaErrorType` here: `AnnaError` is the client's Error class). */
export const AnnaErrorType = {
  NO_ERROR: 0,
  KEY_DNE: 1,
  WRONG_THREAD: 2,
  TIMEOUT: 3,
  LATTICE: 4,
  NO_SERVERS: 5,
} as const;
export type AnnaErrorType = (typeof AnnaErrorType)[keyof typeof AnnaErrorType];

function nameOf(table: Readonly<Record<string, number>>, value: number): string {
  for (const [name, v] of Object.entries(table)) if (v === value) return name;
  return `UNKNOWN(${value})`;
}

/** `LatticeType` value → its name in anna.proto (`UNKNOWN(n)` for a value Anna does not define). */
export const latticeTypeName = (value: number): string => nameOf(LatticeType, value);
/** `AnnaError` value → its name in anna.proto. */
export const annaErrorName = (value: number): string => nameOf(AnnaErrorType, value);
/** `RequestType` value → its name in anna.proto. */
export const requestTypeName = (value: number): string => nameOf(RequestType, value);

export interface KeyTuple {
  key: string;
  latticeType: number;
  error: number;
  payload: Uint8Array;
  addressCacheSize: number;
  invalidate: boolean;
}

export interface KeyRequest {
  type: number;
  tuples: KeyTuple[];
  responseAddress: string;
  requestId: string;
}

export interface KeyResponse {
  type: number;
  tuples: KeyTuple[];
  responseId: string;
  error: number;
}

export interface KeyAddressRequest {
  responseAddress: string;
  keys: string[];
  requestId: string;
}

export interface KeyAddress {
  key: string;
  ips: string[];
}

export interface KeyAddressResponse {
  addresses: KeyAddress[];
  error: number;
  responseId: string;
}

export interface LwwValue {
  /** uint64 on the wire: a bigint so no timestamp loses precision. */
  timestamp: bigint;
  value: Uint8Array;
}

/** Input forms: optional fields may be left out (proto3 defaults). */
export type KeyTupleInit = Pick<KeyTuple, 'key'> & Partial<Omit<KeyTuple, 'key'>>;
export interface KeyRequestInit extends Omit<KeyRequest, 'tuples'> {
  tuples: KeyTupleInit[];
}
export interface KeyResponseInit extends Omit<KeyResponse, 'tuples' | 'error'> {
  tuples: KeyTupleInit[];
  error?: number;
}
export interface KeyAddressResponseInit extends Omit<KeyAddressResponse, 'error'> {
  error?: number;
}

const root = protobuf.Root.fromJSON(annaSchema as unknown as protobuf.INamespace);
const KeyRequestType = root.lookupType('KeyRequest');
const KeyResponseType = root.lookupType('KeyResponse');
const KeyAddressRequestType = root.lookupType('KeyAddressRequest');
const KeyAddressResponseType = root.lookupType('KeyAddressResponse');
const LwwValueType = root.lookupType('LWWValue');
const SetValueType = root.lookupType('SetValue');

const TO_OBJECT: protobuf.IConversionOptions = {
  defaults: true,
  arrays: true,
  longs: BigInt,
  enums: Number,
};

function copyBytes(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

function encode(type: protobuf.Type, message: object): Uint8Array {
  return type.encode(type.fromObject(message)).finish();
}

function decode(type: protobuf.Type, frame: Uint8Array): Record<string, unknown> | undefined {
  try {
    return type.toObject(type.decode(frame), TO_OBJECT);
  } catch {
    return undefined;
  }
}

function tupleFromObject(t: Record<string, unknown>): KeyTuple {
  return {
    key: t.key as string,
    latticeType: t.latticeType as number,
    error: t.error as number,
    payload: copyBytes(t.payload as Uint8Array),
    addressCacheSize: t.addressCacheSize as number,
    invalidate: t.invalidate as boolean,
  };
}

export function encodeKeyRequest(m: KeyRequestInit): Uint8Array {
  return encode(KeyRequestType, m);
}

export function decodeKeyRequest(frame: Uint8Array): KeyRequest | undefined {
  const o = decode(KeyRequestType, frame);
  if (o === undefined) return undefined;
  return {
    type: o.type as number,
    tuples: (o.tuples as Record<string, unknown>[]).map(tupleFromObject),
    responseAddress: o.responseAddress as string,
    requestId: o.requestId as string,
  };
}

export function encodeKeyResponse(m: KeyResponseInit): Uint8Array {
  return encode(KeyResponseType, m);
}

export function decodeKeyResponse(frame: Uint8Array): KeyResponse | undefined {
  const o = decode(KeyResponseType, frame);
  if (o === undefined) return undefined;
  return {
    type: o.type as number,
    tuples: (o.tuples as Record<string, unknown>[]).map(tupleFromObject),
    responseId: o.responseId as string,
    error: o.error as number,
  };
}

export function encodeKeyAddressRequest(m: KeyAddressRequest): Uint8Array {
  return encode(KeyAddressRequestType, m);
}

export function decodeKeyAddressRequest(frame: Uint8Array): KeyAddressRequest | undefined {
  const o = decode(KeyAddressRequestType, frame);
  if (o === undefined) return undefined;
  return {
    responseAddress: o.responseAddress as string,
    keys: [...(o.keys as string[])],
    requestId: o.requestId as string,
  };
}

export function encodeKeyAddressResponse(m: KeyAddressResponseInit): Uint8Array {
  return encode(KeyAddressResponseType, m);
}

export function decodeKeyAddressResponse(frame: Uint8Array): KeyAddressResponse | undefined {
  const o = decode(KeyAddressResponseType, frame);
  if (o === undefined) return undefined;
  return {
    addresses: (o.addresses as Record<string, unknown>[]).map((a) => ({
      key: a.key as string,
      ips: [...(a.ips as string[])],
    })),
    error: o.error as number,
    responseId: o.responseId as string,
  };
}

/** Serializes an LWW lattice payload (`LWWValue`). */
export function encodeLwwValue(m: LwwValue): Uint8Array {
  if (m.timestamp < 0n || m.timestamp >= 1n << 64n) {
    throw new RangeError(`LWW timestamp ${m.timestamp} is outside uint64`);
  }
  // protobufjs takes uint64 as a number, a Long or a decimal string, not a bigint.
  return encode(LwwValueType, { timestamp: m.timestamp.toString(), value: m.value });
}

export function decodeLwwValue(payload: Uint8Array): LwwValue | undefined {
  const o = decode(LwwValueType, payload);
  if (o === undefined) return undefined;
  return { timestamp: BigInt(o.timestamp as bigint), value: copyBytes(o.value as Uint8Array) };
}

/** Serializes a SET lattice payload (`SetValue`). */
export function encodeSetValue(values: Iterable<Uint8Array>): Uint8Array {
  return encode(SetValueType, { values: [...values] });
}

export function decodeSetValue(payload: Uint8Array): Uint8Array[] | undefined {
  const o = decode(SetValueType, payload);
  if (o === undefined) return undefined;
  return (o.values as Uint8Array[]).map(copyBytes);
}
