import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Launcher, LocalLauncher, type ProcessSpec } from '@paxos/launcher';
import { afterAll, describe, expect, it } from 'vitest';

const logDir = mkdtempSync(path.join(tmpdir(), 'paxos-launcher-'));
afterAll(() => rmSync(logDir, { recursive: true, force: true }));

const directory: ProcessSpec = {
  name: 'directory',
  role: 'directory',
  env: {},
  args: ['--host', '127.0.0.1', '--port', '0', '--storage-port', '0', '--log-level', 'warn'],
  ports: [],
  metricsPort: null,
  restart: true,
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('LocalLauncher through the Launcher interface', () => {
  it('launches, lists, restarts a killed process and stops it for good', async () => {
    const local = new LocalLauncher({ logDir, restartDelayMs: 50 });
    const launcher: Launcher = local;
    const started = await launcher.launch(directory);
    expect(started).toMatchObject({
      name: 'directory',
      role: 'directory',
      state: 'running',
      address: '127.0.0.1',
    });
    const firstPid = started.id;
    expect(firstPid).toMatch(/^\d+$/);
    expect((await launcher.list()).map((i) => i.name)).toEqual(['directory']);

    local.kill('directory', 'SIGKILL');
    let after = (await local.list())[0];
    for (let i = 0; i < 100 && (after?.restarts ?? 0) === 0; i++) {
      await sleep(50);
      after = (await local.list())[0];
    }
    expect(after?.restarts).toBe(1);
    expect(after?.id).not.toBe(firstPid);

    await launcher.stop('directory', 2000);
    expect(await launcher.list()).toEqual([]);
    expect(() => process.kill(Number(after?.id), 0)).toThrow();
  });
});
