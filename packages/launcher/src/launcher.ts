import type { ProcessSpec, RoleName } from './topology.ts';

/**
 * What starts and stops role processes. Local child processes (laptop, CI) and EC2 instances
 * implement it, so the cluster tools and the autoscaler work with either.
 */
export interface Launcher {
  /** Starts one process of `spec`; resolves once the launch is accepted (spawned, or RunInstances answered). */
  launch(spec: ProcessSpec): Promise<Instance>;
  /**
   * Stops the process named `name` for good. The role gets SIGTERM first, so it leaves the
   * directory and drains its in-flight work before it exits.
   */
  stop(name: string, graceMs?: number): Promise<void>;
  /** Every process this launcher runs now, in launch order where it knows it. */
  list(): Promise<Instance[]>;
}

export type InstanceState = 'pending' | 'running' | 'restarting' | 'stopping' | 'stopped';

export interface Instance {
  /** The spec's name, e.g. `acceptor-g1-a2`. */
  readonly name: string;
  readonly role: RoleName;
  readonly state: InstanceState;
  /** A local process's pid, or an EC2 instance id; null while there is none. */
  readonly id: string | null;
  /** The host peers reach it at (loopback, or the instance's private IP); null until known. */
  readonly address: string | null;
}
