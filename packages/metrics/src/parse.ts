/** One sample line of the Prometheus text format. */
export interface Sample {
  labels: Record<string, string>;
  value: number;
}

const NAME_START = /[a-zA-Z_:]/;
const NAME_CHAR = /[a-zA-Z0-9_:]/;
const LABEL_START = /[a-zA-Z_]/;
const LABEL_CHAR = /[a-zA-Z0-9_]/;
const FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** Parses a sample value as Prometheus does: decimal floats, `±Inf`, `NaN` (case-insensitive). */
function parseValue(text: string): number | undefined {
  const lower = text.toLowerCase();
  if (lower === 'nan') return Number.NaN;
  if (lower === '+inf' || lower === 'inf' || lower === '+infinity' || lower === 'infinity') {
    return Number.POSITIVE_INFINITY;
  }
  if (lower === '-inf' || lower === '-infinity') return Number.NEGATIVE_INFINITY;
  return FLOAT.test(text) ? Number(text) : undefined;
}

class LineParser {
  private pos = 0;
  constructor(
    private readonly line: string,
    private readonly lineNo: number,
  ) {}

  fail(what: string): never {
    throw new Error(`parseExposition: line ${this.lineNo}: ${what}: ${JSON.stringify(this.line)}`);
  }

  private peek(): string | undefined {
    return this.line[this.pos];
  }

  private skipSpaces(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.pos++;
  }

  private identifier(start: RegExp, rest: RegExp, what: string): string {
    const begin = this.pos;
    const first = this.peek();
    if (first === undefined || !start.test(first)) this.fail(`expected ${what}`);
    this.pos++;
    for (let c = this.peek(); c !== undefined && rest.test(c); c = this.peek()) this.pos++;
    return this.line.slice(begin, this.pos);
  }

  private quoted(): string {
    if (this.peek() !== '"') this.fail('expected " to open a label value');
    this.pos++;
    let out = '';
    for (;;) {
      const c = this.peek();
      if (c === undefined) this.fail('unterminated label value');
      this.pos++;
      if (c === '"') return out;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const next = this.peek();
      if (next === undefined) this.fail('unterminated escape in label value');
      this.pos++;
      if (next === 'n') out += '\n';
      else if (next === '\\' || next === '"') out += next;
      else out += `\\${next}`; // not a defined escape: keep it as written
    }
  }

  private labels(): Record<string, string> {
    const labels: Record<string, string> = {};
    this.pos++; // '{'
    for (;;) {
      this.skipSpaces();
      if (this.peek() === '}') {
        this.pos++;
        return labels;
      }
      const name = this.identifier(LABEL_START, LABEL_CHAR, 'a label name');
      this.skipSpaces();
      if (this.peek() !== '=') this.fail(`expected = after label ${name}`);
      this.pos++;
      this.skipSpaces();
      if (Object.hasOwn(labels, name)) this.fail(`duplicate label ${name}`);
      labels[name] = this.quoted();
      this.skipSpaces();
      const sep = this.peek();
      if (sep === ',') this.pos++;
      else if (sep !== '}') this.fail('expected , or } after a label value');
    }
  }

  sample(): { name: string; sample: Sample } {
    this.skipSpaces();
    const name = this.identifier(NAME_START, NAME_CHAR, 'a metric name');
    this.skipSpaces();
    const labels = this.peek() === '{' ? this.labels() : {};
    const rest = this.line
      .slice(this.pos)
      .trim()
      .split(/[ \t]+/);
    const valueText = rest[0] ?? '';
    if (valueText === '') this.fail('missing value');
    if (rest.length > 2) this.fail('unexpected text after the timestamp');
    const timestamp = rest[1];
    if (timestamp !== undefined && !/^-?\d+$/.test(timestamp)) this.fail('bad timestamp');
    const value = parseValue(valueText);
    if (value === undefined) this.fail(`bad value ${JSON.stringify(valueText)}`);
    return { name, sample: { labels, value } };
  }
}

/**
 * A small parser of the Prometheus text exposition format (version 0.0.4), enough for tests and for
 * tools that read `/metrics`. Returns sample name → samples, in input order; a histogram appears as
 * its `_bucket` (with the `le` label), `_sum` and `_count` series. Comment (`# HELP`, `# TYPE`, …)
 * and blank lines are skipped; timestamps are accepted and dropped. Throws on a malformed line,
 * naming its line number.
 */
export function parseExposition(text: string): Map<string, Sample[]> {
  const out = new Map<string, Sample[]>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const { name, sample } = new LineParser(line, i + 1).sample();
    const list = out.get(name);
    if (list === undefined) out.set(name, [sample]);
    else list.push(sample);
  }
  return out;
}

/** The sum of every sample of `name` in {@link parseExposition}'s result (0 when there is none). */
export function sumSamples(parsed: Map<string, Sample[]>, name: string): number {
  return (parsed.get(name) ?? []).reduce((total, s) => total + s.value, 0);
}

/**
 * Convenience for readers of {@link parseExposition}'s result: the value of the first sample of
 * `name` whose labels include all of `match`, or undefined.
 */
export function findSample(
  parsed: Map<string, Sample[]>,
  name: string,
  match: Record<string, string> = {},
): number | undefined {
  const wanted = Object.entries(match);
  return parsed.get(name)?.find((s) => wanted.every(([k, v]) => s.labels[k] === v))?.value;
}
