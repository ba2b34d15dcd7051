/**
 * npm run bench:edge:throughput — figure 1 of bench:edge, alone: proxy throughput (wrk, 64
 * connections). An nginx origin hit directly (the baseline), then through Portico's edge on each
 * runtime measured (bench/lib/runtimes.ts), nginx and Caddy, each terminating HTTPS with the same
 * certificate, with the CPU each proxy used per request. Every target's req/s is measured
 * BENCH_EDGE_ROUNDS times (3), the targets taking turns, and compared round by round: the
 * ratios are the medians of the rounds' ratios.
 *
 * Set-up: the run's CA, one certificate for the wrk target name, the origin, and an edge per
 * runtime whose store serves that one name. Environment: BENCH_SECONDS, BENCH_EDGE_CPU_PROF
 * (bench/lib/edge-setup.ts), BENCH_EDGE_ROUNDS, BENCH_NODE_LTS (bench/lib/runtimes.ts).
 * Every server is a child process on 127.0.0.1, ended in `finally`; temporary directories go too.
 */
import {
  makeCredentials,
  originUrl,
  printEnd,
  printHeader,
  printSideBySide,
  runtimesNote,
  runtimesOrWarn,
  SECONDS,
  SERVERS_NOTE,
  seededDataDir,
  startMeasuredEdges,
  stopEdges,
  WARMUP_SECONDS,
  WRK_NAME,
  WRK_NOTE,
  wrkCertificate,
} from './lib/edge-setup.js';
import type { EdgeProcess } from './lib/portico-edge.js';
import { cpuSeconds, isMain, machineBusyCores, machineTicks, runBench, treeRssMb } from './lib/processes.js';
import { type Server, startCaddy, startNginxProxy, startOrigin } from './lib/proxies.js';
import { cell, fixed, report, type SummaryRow, table, verdict } from './lib/report.js';
import { median } from './lib/stats.js';
import { expectOk, negotiated } from './lib/tls-clients.js';
import { type Figure, measure } from './lib/wrk.js';

const CONNECTIONS = 64;
const ROUNDS = Math.max(1, Number(process.env.BENCH_EDGE_ROUNDS ?? 3));

interface Target {
  name: string;
  url: string;
  pid: number;
  port?: number;
  /** Set for Portico's edges. */
  edge?: EdgeProcess;
}

/** One req/s run of one target. */
interface Run {
  figure: Figure;
  /** CPU the proxy used, in cores (NaN for the origin). */
  proxyCores: number;
  originCores: number;
  machineCores: number;
}

/**
 * Figure 1: each target under the same wrk load, ROUNDS times in turn, then its p99 with every
 * connection opened first; how Portico on each runtime compares with nginx and Caddy. Returns the
 * lines of the run's closing table.
 */
export async function throughput(
  origin: Server,
  edges: EdgeProcess[],
  nginx: Server,
  caddy: Server,
): Promise<SummaryRow[]> {
  const targets: Target[] = [
    {
      name: 'nginx origin, direct over HTTP (baseline)',
      url: `http://127.0.0.1:${origin.port}/`,
      pid: origin.started.pid,
    },
    ...edges.map((edge) => ({
      name: `Portico edge on ${edge.runtime.label}, HTTPS`,
      url: `https://${WRK_NAME}:${edge.httpsPort}/`,
      pid: edge.started.pid,
      port: edge.httpsPort,
      edge,
    })),
    {
      name: 'nginx proxy, HTTPS',
      url: `https://${WRK_NAME}:${nginx.port}/`,
      pid: nginx.started.pid,
      port: nginx.port,
    },
    {
      name: 'Caddy 2.6 reverse_proxy, HTTPS',
      url: `https://${WRK_NAME}:${caddy.port}/`,
      pid: caddy.started.pid,
      port: caddy.port,
    },
  ];
  const isOrigin = (target: Target) => target.pid === origin.started.pid;
  for (const target of targets) {
    if (target.port !== undefined) await expectOk(target.name, target.port, WRK_NAME);
    // Same warm-up for all: JIT, connection pools to the origin, caches.
    await measure(`${target.name} (warm-up)`, target.url, {
      seconds: WARMUP_SECONDS,
      connections: CONNECTIONS,
    });
  }
  // runs[round][target]: the targets take turns, so a slow spell of the machine (other processes)
  // lands on one round of each rather than on every run of one target.
  const runs: Run[][] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const thisRound: Run[] = [];
    for (const target of targets) {
      const proxyCpu = cpuSeconds(target.pid);
      const originCpu = cpuSeconds(origin.started.pid);
      const machine = machineTicks();
      const figure = await measure(target.name, target.url, { seconds: SECONDS, connections: CONNECTIONS });
      thisRound.push({
        figure,
        machineCores: machineBusyCores(machine, SECONDS),
        proxyCores: isOrigin(target) ? Number.NaN : (cpuSeconds(target.pid) - proxyCpu) / SECONDS,
        originCores: (cpuSeconds(origin.started.pid) - originCpu) / SECONDS,
      });
    }
    runs.push(thisRound);
  }
  const ofTarget = (i: number) => runs.map((round) => round[i] as Run);
  const medianOf = (i: number, value: (run: Run) => number) => median(ofTarget(i).map(value));
  /** Proxy CPU µs per request of one run. */
  const usPerRequest = (run: Run) => (run.proxyCores * 1e6) / Math.max(run.figure.requestsPerSecond, 1);

  // The figures of each target: medians of its rounds, then its p99 with connections opened first.
  const figures: Figure[] = [];
  for (const [i, target] of targets.entries()) {
    // Its p99 again, with every connection open before the load starts (Load.connectionsFirst in
    // bench/lib/wrk.ts): a Node server accepts one connection per loop turn, Go and nginx all at once,
    // and wrk's own p99 counts that start-up against the proxy many times over.
    const latency = await measure(`${target.name} (latency)`, target.url, {
      seconds: SECONDS,
      connections: CONNECTIONS,
      connectionsFirst: true,
    });
    figures.push({
      name: target.name,
      requestsPerSecond: medianOf(i, (run) => run.figure.requestsPerSecond),
      p99Ms: medianOf(i, (run) => run.figure.p99Ms),
      openedFirstP99Ms: latency.p99Ms,
      loadGeneratorCpuSeconds: medianOf(i, (run) => run.figure.loadGeneratorCpuSeconds),
      errors: ofTarget(i).reduce((sum, run) => sum + run.figure.errors, 0) + latency.errors,
    });
  }
  report(
    `### 1. Proxy throughput: ${SECONDS} s each after ${WARMUP_SECONDS} s of warm-up, ${CONNECTIONS} connections, wrk -t2; req/s and wrk's p99 are medians of ${ROUNDS} rounds (ratios to the origin hit directly)`,
    figures,
  );
  const usage: (string | number)[][] = [];
  for (const [i, target] of targets.entries()) {
    usage.push([
      target.name,
      target.port === undefined ? 'HTTP/1.1' : await negotiated(target.port, WRK_NAME),
      ofTarget(i)
        .map((run) => fixed(run.figure.requestsPerSecond, 0))
        .join(', '),
      isOrigin(target) ? '–' : fixed(medianOf(i, (run) => run.proxyCores)),
      fixed(medianOf(i, (run) => run.originCores)),
      isOrigin(target) ? '–' : fixed(medianOf(i, usPerRequest), 0),
      fixed(treeRssMb(target.pid), 0),
      fixed(medianOf(i, (run) => run.machineCores)),
    ]);
  }
  table(
    'Each round, and where the CPU went (medians of the rounds; 1.00 = one core busy for the whole run; the machine has 2, shared with wrk and with anything else running)',
    [
      'load',
      'TLS',
      'req/s of each round',
      'proxy CPU, cores',
      'origin CPU, cores',
      'proxy CPU µs per request',
      'proxy RSS MB',
      'whole machine busy, cores',
    ],
    usage,
    [':---', ':---', ':---'],
  );

  const nginxIndex = targets.length - 2;
  const caddyIndex = targets.length - 1;
  const rows: (string | number)[][] = [];
  const summary: SummaryRow[] = [
    {
      figure: 'proxy req/s ÷ Caddy (one core each; median of the rounds)',
      target: '≥ 1.00',
      byRuntime: new Map(),
    },
    {
      figure: 'proxy p99 ÷ Caddy (connections opened first; lower is better)',
      target: '–',
      byRuntime: new Map(),
    },
    { figure: 'proxy req/s ÷ nginx', target: '–', byRuntime: new Map() },
    { figure: 'proxy p99 ÷ nginx (connections opened first)', target: '–', byRuntime: new Map() },
    { figure: 'requests per proxy CPU-second ÷ Caddy’s', target: '–', byRuntime: new Map() },
  ];
  for (const [i, target] of targets.entries()) {
    if (!target.edge) continue;
    const portico = figures[i] as Figure;
    for (const [against, j] of [
      ['Caddy', caddyIndex],
      ['nginx', nginxIndex],
    ] as const) {
      const other = figures[j] as Figure;
      // Round by round: both measured within a minute of each other.
      const ratios = runs.map(
        (round) =>
          (round[i] as Run).figure.requestsPerSecond /
          Math.max((round[j] as Run).figure.requestsPerSecond, 1),
      );
      const rate = median(ratios);
      const perCpu = medianOf(j, usPerRequest) / medianOf(i, usPerRequest);
      const p99 = (portico.openedFirstP99Ms ?? Number.NaN) / (other.openedFirstP99Ms ?? Number.NaN);
      rows.push([
        `Portico on ${target.edge.runtime.label} ÷ ${against}`,
        fixed(rate),
        ratios.map((ratio) => fixed(ratio)).join(', '),
        fixed(p99),
        fixed(portico.p99Ms / other.p99Ms),
        fixed(perCpu),
        against === 'Caddy' ? '≥ 1.00× req/s' : '–',
        against === 'Caddy' ? verdict(rate >= 1) : '–',
      ]);
      const label = target.edge.runtime.label;
      if (against === 'Caddy') {
        summary[0]?.byRuntime.set(label, cell(fixed(rate), rate >= 1));
        summary[1]?.byRuntime.set(label, fixed(p99));
        summary[4]?.byRuntime.set(label, fixed(perCpu));
      } else {
        summary[2]?.byRuntime.set(label, fixed(rate));
        summary[3]?.byRuntime.set(label, fixed(p99));
      }
    }
  }
  table(
    'Portico against the other proxies (same run). Requests per CPU-second of the proxy moves less than req/s when other processes take CPU',
    [
      'ratio',
      `req/s (median of ${ROUNDS} rounds)`,
      'req/s, each round',
      'p99, connections opened first (lower is better)',
      'p99, wrk raw (median)',
      'requests per proxy CPU-second',
      'target',
      'verdict',
    ],
    rows,
    [':---', '---:', ':---'],
  );
  return summary;
}

if (isMain(import.meta.url)) {
  await runBench(async (processes) => {
    const began = performance.now();
    const prepared = runtimesOrWarn();
    const { runtimes } = prepared;
    const credentials = await makeCredentials(processes);
    const wrk = wrkCertificate(credentials);
    const origin = await startOrigin(processes);
    const dataDir = await seededDataDir(processes, credentials, 'data', {
      originUrl: originUrl(origin),
      primaries: [WRK_NAME],
      domains: [],
      perApp: 10,
      certificates: [wrk.row],
    });
    const edges = await startMeasuredEdges(processes, runtimes, dataDir);
    const nginx = await startNginxProxy(processes, WRK_NAME, wrk.files, origin.port);
    const caddy = await startCaddy(processes, WRK_NAME, wrk.files, origin.port);
    await printHeader('proxy throughput', [
      runtimesNote(prepared),
      SERVERS_NOTE,
      WRK_NOTE,
      "wrk, nginx and Caddy share the machine's cores",
    ]);
    const summary = await throughput(origin, edges, nginx, caddy);
    await stopEdges(processes, edges);
    printSideBySide('### Side by side', prepared, summary);
    printEnd(began, 'the edges');
  });
}
