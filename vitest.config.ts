import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real LMDB, worker threads and child processes: separate processes are safest.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 180_000,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
