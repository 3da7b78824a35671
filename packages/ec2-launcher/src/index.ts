export * from './autoscale.ts';
export * from './autoscale-command.ts';
export * from './cluster.ts';
export * from './dry-run.ts';
export * from './ec2.ts';
export * from './errors.ts';
export * from './user-data.ts';
