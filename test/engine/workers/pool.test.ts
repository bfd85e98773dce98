import { describe, expect, it } from 'vitest';
import { workersFor } from '../../../engine/workers/pool.js';

describe('workersFor', () => {
  it('starts one worker per 32 MiB of planned reading, at least one, at most one per core, all for a stream', () => {
    expect(workersFor(0, 8)).toBe(1);
    expect(workersFor(20e6, 8)).toBe(1);
    expect(workersFor(32 * 1024 * 1024 + 1, 8)).toBe(2);
    expect(workersFor(10 * 1024 ** 3, 8)).toBe(8);
    expect(workersFor(null, 8)).toBe(8);
    expect(workersFor(null, 0)).toBe(1);
  });
});
