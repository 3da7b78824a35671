export * from './acceptor-groups.ts';
export * from './capacity.ts';
export * from './controller.ts';
export * from './load-sources.ts';
export * from './policy.ts';
export * from './prometheus.ts';
export * from './settings.ts';
export * from './types.ts';
