/**
 * Portico's edge as the benchmark runs it: a real `portico serve --roles edge` process on a data
 * directory prepared beforehand, on ports it picks itself, on one of the runtimes measured
 * (bench/lib/runtimes.ts).
 */

import { readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { withEdgeEnvironment, withEdgeNodeFlags } from '../../src/edge-workers/node-flags.js';
import { type Processes, type Started, waitForOutput } from './processes.js';
import type { Runtime } from './runtimes.js';

const LISTENING = /Portico edge listening on http:\/\/[^\s]+:(\d+) and https:\/\/[^\s]+:(\d+)/;

export interface EdgeProcess {
  readonly runtime: Runtime;
  readonly started: Started;
  readonly httpPort: number;
  readonly httpsPort: number;
  /** From spawn to the "edge listening" line, in ms. */
  readonly startMs: number;
}

export interface EdgeOptions {
  runtime: Runtime;
  dataDir: string;
  appsDomain: string;
  /** When set, the edge writes a V8 CPU profile (`--cpu-prof`) there when it exits. */
  cpuProfileDir?: string;
  /**
   * PORTICO_EDGE_WORKERS. Default 1, whatever the machine's cores: the figures compare Portico
   * with nginx and Caddy on one core each; bench/edge-workers.ts sets more.
   */
  workers?: number;
  /** Settings of the edge's own (`PORTICO_…`), beside the ones every benchmark edge gets. */
  env?: Record<string, string>;
}

export async function startPorticoEdge(processes: Processes, options: EdgeOptions): Promise<EdgeProcess> {
  // Only what this benchmark sets: nothing from the caller's PORTICO_* or DATABASE_URL leaks in.
  const inherited: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('PORTICO_') && key !== 'DATABASE_URL'),
  );
  // As `npm start` and edge workers run it: the edge's malloc setting, unless the caller set one.
  const env = withEdgeEnvironment(inherited, {});
  Object.assign(env, {
    PORTICO_DATA_DIR: options.dataDir,
    PORTICO_HOST: '127.0.0.1',
    PORTICO_EDGE_HTTP_PORT: '0',
    PORTICO_EDGE_HTTPS_PORT: '0',
    PORTICO_ALLOW_PRIVATE_ORIGINS: '1',
    PORTICO_APPS_DOMAIN: options.appsDomain,
    PORTICO_LOG_LEVEL: 'warn',
    PORTICO_TLS_ISSUER: 'internal',
    PORTICO_EDGE_WORKERS: String(options.workers ?? 1),
    ...options.env,
  });
  const profile = options.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`] : [];
  const began = performance.now();
  const { runtime } = options;
  const started = processes.start(
    `portico edge (${runtime.label})`,
    runtime.node,
    [
      // As `portico` and `npm start` run it (bin/portico.js's first line).
      ...withEdgeNodeFlags(runtime.nodeArgs, env.NODE_OPTIONS),
      ...profile,
      path.join(runtime.root, 'bin', 'portico.js'),
      'serve',
      '--roles',
      'edge',
    ],
    env,
  );
  const match = await waitForOutput(started, LISTENING);
  const startMs = performance.now() - began;
  // The figures are this runtime's only if the process serving them is: checked, not assumed.
  const running = readlinkSync(`/proc/${started.pid}/exe`);
  if (running !== realpathSync(runtime.node)) {
    throw new Error(`the edge meant for ${runtime.label} runs ${running}`);
  }
  return { runtime, started, httpPort: Number(match[1]), httpsPort: Number(match[2]), startMs };
}
