export * from './cli-args.ts';
export * from './cli-output.ts';
export * from './cpu-quota.ts';
export * from './launcher.ts';
export * from './local.ts';
export * from './output.ts';
export * from './reconfiguration.ts';
export * from './topology.ts';
