import { defineConfig } from 'vitest/config';
import { EDGE_NODE_FLAGS } from './src/edge-workers/node-flags.js';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Integration suites start real servers (DNS, PostgreSQL schemas): give them room on 2 cores.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Test files run edges in-process: with the Node options every edge process runs with (a bounded
    // young generation), so what they measure of memory is what production's edges do.
    poolOptions: { forks: { execArgv: [...EDGE_NODE_FLAGS] } },
    // Vitest's default on 2 cores is one file at a time; most suites spend their time waiting on
    // real servers (Pebble validating, processes starting, DNS timeouts), so two at once halve the
    // wall time without starving each other.
    maxWorkers: 2,
    minWorkers: 1,
    reporters: ['default'],
  },
});
