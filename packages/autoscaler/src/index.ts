export * from './controller.ts';
export * from './load-sources.ts';
export * from './types.ts';
