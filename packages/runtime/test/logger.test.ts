import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeOptions, processLogger } from '../src/index.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function logTo(instance: string, write: (logger: ReturnType<typeof processLogger>) => void) {
  const dir = mkdtempSync(path.join(tmpdir(), 'paxos-log-'));
  dirs.push(dir);
  const file = path.join(dir, 'log');
  const fd = openSync(file, 'w');
  const logger = processLogger('paxos-proxy-leader', 'info', instance, { fd, sync: true });
  write(logger);
  closeSync(fd);
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('processLogger', () => {
  it('logs role, instance and an ISO timestamp', () => {
    const [line] = logTo('proxy-leader-1', (l) => l.info('hello'));
    expect(line).toMatchObject({ role: 'proxy_leader', instance: 'proxy-leader-1', msg: 'hello' });
    expect(line?.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('without INSTANCE, takes the default instance once nodeOptions knows the port', () => {
    const lines = logTo('', (logger) => {
      logger.info('before');
      nodeOptions(
        {
          instance: '',
          directoryPollMs: 300,
          leaseTimeoutMs: 0,
          drainTimeoutMs: 1000,
        } as unknown as Parameters<typeof nodeOptions>[0],
        logger,
        'proxy_leader',
        ['tcp://127.0.0.1:12100'],
      );
      logger.info('after');
    });
    expect(lines[0]).not.toHaveProperty('instance');
    expect(lines[1]).toMatchObject({ role: 'proxy_leader', instance: 'proxy_leader-12100' });
    expect(JSON.stringify(lines[1]).match(/"instance"/g)).toHaveLength(1);
  });
});
