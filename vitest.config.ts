import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real LMDB, worker threads and child processes: separate processes are safest.
    pool: 'forks',
    // Fails any test file that leaves a process running (test/helpers/no-leftovers.ts).
    setupFiles: ['./test/helpers/no-leftovers.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
