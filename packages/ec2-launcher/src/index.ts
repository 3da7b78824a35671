export * from './user-data.ts';
