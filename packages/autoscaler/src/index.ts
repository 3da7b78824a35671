export * from './capacity.ts';
export * from './policy.ts';
export * from './settings.ts';
export * from './types.ts';
