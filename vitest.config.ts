import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Test files run in child processes; thread nodes are worker threads inside them.
    pool: 'forks',
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
