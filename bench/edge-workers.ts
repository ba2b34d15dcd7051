/**
 * npm run bench:edge:workers — the edge on every core: PORTICO_EDGE_WORKERS=1 (the baseline, the
 * edge in one process) against 2 on this machine, under the same wrk load. For each: requests per
 * second, p99, and requests per edge CPU-second (the CPU time of the edge's whole process tree,
 * primary and workers, from /proc), with the CPU wrk itself used beside it. The target (issue 14):
 * requests per edge CPU-second with 2 workers at least 0.90 of 1 worker's.
 *
 * The machine has two cores, which wrk, the nginx origin and the edge share: two edge workers can
 * never have a core each, so req/s says little here; the CPU each request costs is what must hold.
 * The two settings alternate for BENCH_ROUNDS rounds (default 3), and the medians are compared.
 * Environment: BENCH_SECONDS (10) per load, BENCH_ROUNDS.
 */
import { availableParallelism } from 'node:os';
import {
  APPS_DOMAIN,
  makeCredentials,
  originUrl,
  printEnd,
  printHeader,
  SECONDS,
  seededDataDir,
  WRK_NAME,
  WRK_NOTE,
  wrkCertificate,
} from './lib/edge-setup.js';
import { startPorticoEdge } from './lib/portico-edge.js';
import {
  cpuSeconds,
  machineBusyCores,
  machineTicks,
  processCpuSeconds,
  processTree,
  runBench,
  treeRssMb,
} from './lib/processes.js';
import { type Server, startOrigin } from './lib/proxies.js';
import { fixed, table, verdict } from './lib/report.js';
import { type Runtime, thisRuntime } from './lib/runtimes.js';
import { median } from './lib/stats.js';
import { expectOk } from './lib/tls-clients.js';
import { measure } from './lib/wrk.js';

const CONNECTIONS = 64;
/**
 * Longer than the other edge figures' warm-up (WARMUP_SECONDS), for both settings: each worker is a
 * Node.js process of its own whose JIT warms up on its share of the load, half of it with 2 workers.
 */
const WARMUP = Math.min(5, SECONDS);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SETTINGS = [1, 2] as const;
/** Requests per edge CPU-second with 2 workers, as a share of 1 worker's: at least this. */
const TARGET = 0.9;

interface Run {
  workers: number;
  round: number;
  requestsPerSecond: number;
  /** wrk's p99. */
  p99Ms: number;
  /** p99 of a second load whose connections were all open before it began (bench/lib/wrk.ts). */
  openedFirstP99Ms: number;
  /** Cores the edge's processes kept busy (1.00 = one core for the whole load). */
  edgeCores: number;
  /** Of those, the process `serve` itself: with workers, the primary (accepting connections, gathering metrics). */
  primaryCores: number;
  requestsPerEdgeCpuSecond: number;
  wrkCores: number;
  originCores: number;
  machineCores: number;
  edgeProcesses: number;
  rssMbPerProcess: number;
  errors: number;
}

async function measureEdge(
  processes: Parameters<Parameters<typeof runBench>[0]>[0],
  dataDir: string,
  origin: Server,
  workers: number,
  round: number,
  runtime: Runtime,
): Promise<Run> {
  const edge = await startPorticoEdge(processes, { runtime, dataDir, appsDomain: APPS_DOMAIN, workers });
  try {
    await expectOk(`Portico edge, ${workers} worker(s)`, edge.httpsPort, WRK_NAME);
    const url = `https://${WRK_NAME}:${edge.httpsPort}/`;
    const name = `${workers} edge worker(s), round ${round}`;
    await measure(`${name} (warm-up)`, url, { seconds: WARMUP, connections: CONNECTIONS });
    const pid = edge.started.pid;
    const edgeCpu = cpuSeconds(pid);
    const primaryCpu = processCpuSeconds(pid);
    const originCpu = cpuSeconds(origin.started.pid);
    const machine = machineTicks();
    const figure = await measure(name, url, { seconds: SECONDS, connections: CONNECTIONS });
    const machineCores = machineBusyCores(machine, SECONDS);
    const edgeCores = (cpuSeconds(pid) - edgeCpu) / SECONDS;
    const primaryCores = (processCpuSeconds(pid) - primaryCpu) / SECONDS;
    const originCores = (cpuSeconds(origin.started.pid) - originCpu) / SECONDS;
    const edgeProcesses = processTree(pid).length;
    const rssMbPerProcess = treeRssMb(pid) / edgeProcesses;
    const latency = await measure(`${name} (latency)`, url, {
      seconds: SECONDS,
      connections: CONNECTIONS,
      connectionsFirst: true,
    });
    return {
      workers,
      round,
      requestsPerSecond: figure.requestsPerSecond,
      p99Ms: figure.p99Ms,
      openedFirstP99Ms: latency.p99Ms,
      edgeCores,
      primaryCores,
      requestsPerEdgeCpuSecond: figure.requestsPerSecond / Math.max(edgeCores, 0.001),
      wrkCores: figure.loadGeneratorCpuSeconds / SECONDS,
      originCores,
      machineCores,
      edgeProcesses,
      rssMbPerProcess,
      errors: figure.errors + latency.errors,
    };
  } finally {
    await processes.stop(edge.started, 20_000);
  }
}

await runBench(async (processes) => {
  const began = performance.now();
  const credentials = await makeCredentials(processes);
  const wrk = wrkCertificate(credentials);
  const origin = await startOrigin(processes);
  // One store for every edge of the run, each started on it in turn (they only read it).
  const dataDir = await seededDataDir(processes, credentials, 'data', {
    originUrl: originUrl(origin),
    primaries: [WRK_NAME],
    domains: [],
    perApp: 10,
    certificates: [wrk.row],
  });
  await printHeader('1 edge worker against 2 (PORTICO_EDGE_WORKERS)', [
    `the edge is \`portico serve --roles edge\` with PORTICO_EDGE_WORKERS=1 (one process, the baseline) or 2 (a primary and two workers sharing the port); ${ROUNDS} rounds, the settings alternating`,
    WRK_NOTE,
    `wrk (-t2, ${CONNECTIONS} connections), a one-worker nginx origin and the edge share this machine's ${availableParallelism()} cores`,
  ]);

  const runtime = thisRuntime();
  const runs: Run[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    for (const workers of SETTINGS)
      runs.push(await measureEdge(processes, dataDir, origin, workers, round, runtime));
  }

  table(
    `Every load: ${SECONDS} s each after ${WARMUP} s of warm-up. CPU in cores (1.00 = one core busy for the whole load)`,
    [
      'edge workers',
      'round',
      'req/s',
      'p99 ms (wrk)',
      'p99 ms, connections opened first',
      'edge CPU',
      'of which the primary',
      'requests per edge CPU-second',
      'wrk CPU',
      'origin CPU',
      'whole machine busy',
      'edge processes',
      'RSS MB per edge process',
      'failed',
    ],
    runs.map((run) => [
      run.workers,
      run.round,
      fixed(run.requestsPerSecond, 0),
      fixed(run.p99Ms, 1),
      fixed(run.openedFirstP99Ms, 1),
      fixed(run.edgeCores),
      run.workers === 1 ? '–' : fixed(run.primaryCores),
      fixed(run.requestsPerEdgeCpuSecond, 0),
      fixed(run.wrkCores),
      fixed(run.originCores),
      fixed(run.machineCores),
      run.edgeProcesses,
      fixed(run.rssMbPerProcess, 0),
      run.errors,
    ]),
  );

  const medianOf = (workers: number, pick: (run: Run) => number) =>
    median(runs.filter((run) => run.workers === workers).map(pick));
  const rows: (string | number)[][] = [];
  const figures: [string, (run: Run) => number, string, (ratio: number) => string][] = [
    ['req/s', (run) => run.requestsPerSecond, '–', () => '–'],
    ['p99 ms, connections opened first (lower is better)', (run) => run.openedFirstP99Ms, '–', () => '–'],
    ['p99 ms, wrk (lower is better)', (run) => run.p99Ms, '–', () => '–'],
    [
      'requests per edge CPU-second',
      (run) => run.requestsPerEdgeCpuSecond,
      `≥ ${fixed(TARGET)}×`,
      (ratio) => verdict(ratio >= TARGET),
    ],
    ["wrk's share of the machine's busy CPU", (run) => run.wrkCores / run.machineCores, '–', () => '–'],
  ];
  for (const [name, pick, target, judge] of figures) {
    const one = medianOf(1, pick);
    const two = medianOf(2, pick);
    rows.push([
      name,
      fixed(one, one > 100 ? 0 : 2),
      fixed(two, two > 100 ? 0 : 2),
      fixed(two / one),
      target,
      judge(two / one),
    ]);
  }
  table(
    `Medians of ${ROUNDS} rounds: 2 edge workers ÷ 1 (same run; the machine is shared, so single figures are noisy)`,
    ['figure', '1 worker', '2 workers', '2 ÷ 1', 'target', 'verdict'],
    rows,
    [':---'],
  );
  printEnd(began);
});
