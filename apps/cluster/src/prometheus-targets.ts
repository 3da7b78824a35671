import { renameSync, writeFileSync } from 'node:fs';

/**
 * Prometheus file-based service discovery for the local cluster: `<workDir>/prometheus-targets.json`
 * lists every running process that serves `/metrics`, and `infra/prometheus/prometheus-local.yml`
 * reads it (Prometheus notices each rewrite).
 */

/** Name of the targets file inside the cluster's working directory. */
export const PROMETHEUS_TARGETS_FILE = 'prometheus-targets.json';

/** What {@link fileSdTargets} needs of a process. */
export interface MetricsTarget {
  readonly name: string;
  readonly role: string;
  readonly metricsPort: number | null;
}

/** One target group of Prometheus' file_sd format. */
export interface FileSdGroup {
  readonly targets: readonly string[];
  /** No `role` for the autoscaler: its series carry the role they size in their own `role` label. */
  readonly labels: { readonly name: string; readonly role?: string };
}

/**
 * One target group per process with a metrics port, in the given order. `role` is the value the
 * process puts in its own `role` label (`proxy-leader` → `proxy_leader`), so Prometheus' `up` and
 * the process's metrics group by the same role.
 */
export function fileSdTargets(processes: readonly MetricsTarget[], host: string): FileSdGroup[] {
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return processes.flatMap((p) =>
    p.metricsPort === null
      ? []
      : [
          {
            targets: [`${hostPart}:${p.metricsPort}`],
            labels:
              p.role === 'autoscaler'
                ? { name: p.name }
                : { name: p.name, role: p.role.replaceAll('-', '_') },
          },
        ],
  );
}

/** Writes {@link fileSdTargets} to `file` whole, then renames it into place: Prometheus never reads half a file. */
export function writeFileSdTargets(file: string, processes: readonly MetricsTarget[], host: string): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(fileSdTargets(processes, host), null, 2)}\n`);
  renameSync(tmp, file);
}
