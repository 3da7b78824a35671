export * from './checker.ts';
export * from './event-queue.ts';
export * from './rng.ts';
export * from './simulation.ts';
export * from './sweep.ts';
