/**
 * Endpoint strings: every address in this system is a full `tcp://host:port` (docs/architecture.md §4:
 * "a directory entry is the full endpoint, never a bare IP").
 */

/** host: IPv4, hostname/interface name, `*` (bind only) or a bracketed IPv6 literal. */
const ENDPOINT = /^tcp:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9*](?:[A-Za-z0-9._-]*[A-Za-z0-9])?):(\*|\d{1,5})$/;

export interface ParsedEndpoint {
  host: string;
  /** `undefined` when the port is `*` or 0 (an ephemeral port chosen by the OS at bind time). */
  port: number | undefined;
}

/** Parses `tcp://host:port`; returns an error message (naming the value and the expected form) if it is not one. */
export function parseEndpoint(
  value: unknown,
  purpose: 'bind' | 'connect',
): { ok: true; endpoint: ParsedEndpoint } | { ok: false; message: string } {
  const expected =
    purpose === 'bind'
      ? "expected 'tcp://host:port' with port 1-65535, or '*'/0 for an ephemeral port (e.g. 'tcp://127.0.0.1:11000')"
      : "expected 'tcp://host:port' with port 1-65535 (e.g. 'tcp://127.0.0.1:11000')";
  const bad = (why: string) => ({
    ok: false as const,
    message: `invalid ${purpose} endpoint ${JSON.stringify(value)}: ${why}; ${expected}`,
  });
  if (typeof value !== 'string') return bad('not a string');
  const match = ENDPOINT.exec(value);
  if (!match) return bad('not of the form tcp://host:port');
  const host = match[1] as string;
  const portText = match[2] as string;
  if (purpose === 'connect' && host === '*') return bad("cannot connect to host '*'");
  if (host.includes('*') && host !== '*') return bad("'*' must be the whole host");
  if (portText === '*') {
    if (purpose === 'connect') return bad("cannot connect to port '*'");
    return { ok: true, endpoint: { host, port: undefined } };
  }
  const port = Number(portText);
  if (port > 65535) return bad(`port ${port} is out of range`);
  if (port === 0) {
    if (purpose === 'connect') return bad('cannot connect to port 0');
    return { ok: true, endpoint: { host, port: undefined } };
  }
  return { ok: true, endpoint: { host, port } };
}

/** Throws a clear Error unless `value` is a valid endpoint for `purpose`. */
export function assertEndpoint(value: unknown, purpose: 'bind' | 'connect'): ParsedEndpoint {
  const parsed = parseEndpoint(value, purpose);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.endpoint;
}
