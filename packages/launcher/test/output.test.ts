import { describe, expect, it } from 'vitest';
import { formatPairs, formatTable, packageVersion } from '../src/index.ts';

describe('formatTable', () => {
  it('aligns columns two spaces apart, numbers right-aligned, null as "-"', () => {
    expect(
      formatTable(
        ['process', 'pid', 'leader'],
        [
          ['proposer-0', 4242, 'yes'],
          ['batcher-10', null, ''],
        ],
        { right: ['pid'] },
      ),
    ).toEqual(['process      pid  leader', 'proposer-0  4242  yes', 'batcher-10     -']);
    expect(formatTable(['hop', 'µs', 'share'], [['wire', 12, '5%']], { right: 'all-but-first' })).toEqual([
      'hop   µs  share',
      'wire  12     5%',
    ]);
  });

  it('pads summary labels to one width', () => {
    expect(formatPairs({ leader: 'proposer-0', 'duration (s)': '30.0' })).toEqual([
      'leader        proposer-0',
      'duration (s)  30.0',
    ]);
  });

  it('reads the version of the package a module is in', () => {
    expect(packageVersion(import.meta.url)).toBe('0.1.0');
  });
});
