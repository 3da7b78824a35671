export {
  BATCH_SIZE_BUCKETS,
  CORE_METRIC_NAMES,
  CORE_METRICS,
  type CoreMetricMapping,
  DIRECTORY_METRIC_DEFINITIONS,
  LATENCY_BUCKETS_SECONDS,
  METRIC_DEFINITIONS,
  METRIC_NAMES,
  type MetricDefinition,
  type MetricType,
  type PaxosMetricName,
  ROLE_LABELS,
  type RoleLabel,
} from './definitions.ts';
export { DirectoryMetrics, type DirectoryMetricsOptions, type DirectoryStats } from './directory-metrics.ts';
export { type MetricEffect, Metrics, type MetricsOptions } from './metrics.ts';
export { findSample, parseExposition, type Sample, sumSamples } from './parse.ts';
export { type MetricsServer, type MetricsSource, type ServeMetricsOptions, serveMetrics } from './server.ts';
