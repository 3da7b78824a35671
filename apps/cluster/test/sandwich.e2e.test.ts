import { describe, expect, it } from 'vitest';
import { MEASURED_ROLES, runSandwich } from '../src/sandwich.ts';

describe('capacity sandwiches: one real role between mocks', () => {
  it.each(MEASURED_ROLES.map((role, i) => [role, 24600 + i * 40] as const))(
    '%s: the input mock drives it, the output mock counts commands coming out',
    async (role, basePort) => {
      const r = await runSandwich({ role, batchSize: 10, warmupS: 0.5, measureS: 1, basePort, window: 4 });
      console.log(
        `${role}: ${r.commandsPerSecond} commands/s, ${r.messagesPerSecond} msgs/s in, CPU ${r.cpuPercent}%`,
      );
      expect(r.commandsPerSecond).toBeGreaterThan(0);
      expect(r.messagesPerSecond).toBeGreaterThan(0);
      expect(r.cpuPercent).toBeGreaterThan(0);
      expect(r.p50Ms).not.toBeNull();
      // Both from one merged histogram of the window, so they are ordered.
      expect(r.p99Ms).toBeGreaterThanOrEqual(r.p50Ms as number);
    },
  );
});
