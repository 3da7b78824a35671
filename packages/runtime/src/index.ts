export type { MemberKind } from '@paxos/anna-client';
export * from './address.ts';
export * from './app.ts';
export * from './config.ts';
export * from './directory.ts';
export * from './matchmaker-store.ts';
export * from './node.ts';
export * from './trace.ts';
export * from './wal.ts';
