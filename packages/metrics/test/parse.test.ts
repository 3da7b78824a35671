import { describe, expect, it } from 'vitest';
import { findSample, parseExposition, sumSamples } from '../src/index.ts';

describe('parseExposition', () => {
  it('parses samples with and without labels, skipping comments and blank lines', () => {
    const text = [
      '# HELP p1a Phase 1a messages',
      '# TYPE p1a counter',
      'p1a{role="acceptor",instance="a-1"} 3',
      '',
      '   # an indented comment',
      '#',
      'up 1',
      'up{job="x"} 0',
      '',
    ].join('\n');
    const p = parseExposition(text);
    expect([...p.keys()]).toEqual(['p1a', 'up']);
    expect(p.get('p1a')).toEqual([{ labels: { role: 'acceptor', instance: 'a-1' }, value: 3 }]);
    expect(p.get('up')).toEqual([
      { labels: {}, value: 1 },
      { labels: { job: 'x' }, value: 0 },
    ]);
  });

  it('handles escaped quotes, backslashes, newlines, and separators inside label values', () => {
    const line = String.raw`msg{path="C:\\dir\\file",text="say \"hi\"\nbye",odd="a,b}c=d",u="\q"} 1`;
    const s = parseExposition(line).get('msg')?.[0];
    expect(s?.labels).toEqual({
      path: 'C:\\dir\\file',
      text: 'say "hi"\nbye',
      odd: 'a,b}c=d',
      u: '\\q',
    });
    expect(s?.value).toBe(1);
  });

  it('tolerates spaces, tabs, a trailing comma, empty braces, empty values and CRLF', () => {
    const text = 'a { x = "1" , y="" , } 2\r\nb{} 3\r\nc\t4\t1700000000000\r\n';
    const p = parseExposition(text);
    expect(p.get('a')?.[0]).toEqual({ labels: { x: '1', y: '' }, value: 2 });
    expect(p.get('b')?.[0]).toEqual({ labels: {}, value: 3 });
    expect(p.get('c')?.[0]).toEqual({ labels: {}, value: 4 });
  });

  it('parses +Inf, -Inf, NaN, exponents and signs', () => {
    const text = [
      'v{k="1"} +Inf',
      'v{k="2"} -Inf',
      'v{k="3"} NaN',
      'v{k="4"} 1e-05',
      'v{k="5"} -2.5E+3',
      'v{k="6"} .5',
      'v{k="7"} Inf',
      'v{k="8"} 7 -123',
    ].join('\n');
    const values = parseExposition(text)
      .get('v')
      ?.map((s) => s.value);
    expect(values).toEqual([
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      Number.NaN,
      0.00001,
      -2500,
      0.5,
      Number.POSITIVE_INFINITY,
      7,
    ]);
  });

  it('returns histogram _bucket/_sum/_count series separately, with le labels', () => {
    const text = [
      '# HELP lat Latency',
      '# TYPE lat histogram',
      'lat_bucket{le="0.005",role="client",instance="c"} 1',
      'lat_bucket{le="0.01",role="client",instance="c"} 2',
      'lat_bucket{le="+Inf",role="client",instance="c"} 3',
      'lat_sum{role="client",instance="c"} 0.0421',
      'lat_count{role="client",instance="c"} 3',
    ].join('\n');
    const p = parseExposition(text);
    expect(p.get('lat_bucket')?.map((s) => [s.labels.le, s.value])).toEqual([
      ['0.005', 1],
      ['0.01', 2],
      ['+Inf', 3],
    ]);
    expect(findSample(p, 'lat_sum', { role: 'client' })).toBe(0.0421);
    expect(findSample(p, 'lat_count')).toBe(3);
    expect(findSample(p, 'lat_bucket', { le: '+Inf' })).toBe(3);
    expect(findSample(p, 'lat_bucket', { le: '99' })).toBeUndefined();
    expect(findSample(p, 'missing')).toBeUndefined();
    expect(p.has('lat')).toBe(false);
  });

  it('accepts colons in metric names and underscores in label names', () => {
    const p = parseExposition('job:rate_5m{_under_score="x",a1="y"} 0.25');
    expect(p.get('job:rate_5m')?.[0]).toEqual({ labels: { _under_score: 'x', a1: 'y' }, value: 0.25 });
  });

  it('parses an empty document to an empty map', () => {
    expect(parseExposition('').size).toBe(0);
    expect(parseExposition('# only comments\n\n').size).toBe(0);
  });

  it.each([
    ['missing value', 'foo'],
    ['missing value after labels', 'foo{a="b"}'],
    ['bad value', 'foo 12abc'],
    ['hex value', 'foo 0x10'],
    ['unterminated label value', 'foo{a="b} 1'],
    ['unquoted label value', 'foo{a=b} 1'],
    ['missing =', 'foo{a"b"} 1'],
    ['missing separator', 'foo{a="1" b="2"} 1'],
    ['duplicate label', 'foo{a="1",a="2"} 1'],
    ['bad metric name', '1foo 1'],
    ['bad timestamp', 'foo 1 soon'],
    ['extra tokens', 'foo 1 2 3'],
  ])('throws on %s, naming the line', (_what, line) => {
    expect(() => parseExposition(`ok 1\n${line}\n`)).toThrow(/line 2/);
  });
});

describe('sumSamples', () => {
  it('adds every sample of a name across label sets, 0 for a name with none', () => {
    const parsed = parseExposition(
      [
        'num_invalid_messages{role="acceptor",socket="0"} 3',
        'num_invalid_messages{role="acceptor",socket="1"} 4.5',
        'other_metric 100',
      ].join('\n'),
    );
    expect(sumSamples(parsed, 'num_invalid_messages')).toBe(7.5);
    expect(sumSamples(parsed, 'missing')).toBe(0);
  });
});
