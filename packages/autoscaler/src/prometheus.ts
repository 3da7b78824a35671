/**
 * The one Prometheus HTTP API call the autoscaler makes: an instant query whose answer is a
 * vector, read as one number per value of a label. PrometheusLoadSource reads the load with it;
 * the EC2 autoscaler also asks it which instances are scraped (`up`).
 */

export class PrometheusError extends Error {
  override readonly name = 'PrometheusError';
}

export interface InstantQueryOptions {
  /** The label whose values key the result (e.g. `instance`). */
  readonly by: string;
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
}

/**
 * `GET <url>/api/v1/query?query=…`. Throws PrometheusError with one line saying what failed: no
 * answer (refused, timed out), an HTTP error, or a query Prometheus refused.
 */
export async function instantQuery(
  url: string,
  query: string,
  options: InstantQueryOptions,
): Promise<Map<string, number>> {
  const result = new Map<string, number>();
  for (const { labels, value } of await instantVector(url, query, options)) {
    const key = labels[options.by];
    if (key !== undefined) result.set(key, value);
  }
  return result;
}

/** One series of an instant vector: its labels and its (finite) value. */
export interface VectorSample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** The same query, every series with all its labels (those whose value is not finite left out). */
export async function instantVector(
  url: string,
  query: string,
  options: Omit<InstantQueryOptions, 'by'> = {},
): Promise<VectorSample[]> {
  const endpoint = new URL('/api/v1/query', url);
  endpoint.searchParams.set('query', query);
  let response: Response;
  try {
    response = await (options.fetch ?? fetch)(endpoint, {
      signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
    });
  } catch (err) {
    // fetch's own message is "fetch failed"; the cause says why (ECONNREFUSED, a timeout).
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    throw new PrometheusError(`Prometheus at ${url} did not answer (${why})`);
  }
  let body: {
    status?: string;
    error?: string;
    data?: { resultType?: string; result?: { metric?: Record<string, string>; value?: [number, string] }[] };
  };
  try {
    body = (await response.json()) as typeof body;
  } catch {
    throw new PrometheusError(`Prometheus at ${url} answered ${response.status} without JSON`);
  }
  if (!response.ok || body.status !== 'success') {
    throw new PrometheusError(
      `Prometheus at ${url} refused \`${query}\` (${response.status}${body.error ? `: ${body.error}` : ''})`,
    );
  }
  return (body.data?.result ?? []).flatMap((r) => {
    const value = Number(r.value?.[1]);
    return Number.isFinite(value) ? [{ labels: r.metric ?? {}, value }] : [];
  });
}
