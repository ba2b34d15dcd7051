/**
 * npm run bench:edge:throughput — figure 1 of bench:edge, alone: proxy throughput (wrk, 64
 * connections). An nginx origin hit directly (the baseline), then through Portico's edge, nginx and
 * Caddy, each terminating HTTPS with the same certificate, with the CPU each proxy used per request.
 *
 * Set-up: the run's CA, one certificate for the wrk target name, the origin, and an edge whose store
 * serves that one name. Environment: BENCH_SECONDS, BENCH_EDGE_CPU_PROF (bench/lib/edge-setup.ts).
 * Every server is a child process on 127.0.0.1, ended in `finally`; temporary directories go too.
 */
import {
  makeCredentials,
  originUrl,
  printEnd,
  printHeader,
  SECONDS,
  SERVERS_NOTE,
  seededDataDir,
  startMeasuredEdge,
  stopEdge,
  WARMUP_SECONDS,
  WRK_NAME,
  WRK_NOTE,
  wrkCertificate,
} from './lib/edge-setup.js';
import type { EdgeProcess } from './lib/portico-edge.js';
import { cpuSeconds, isMain, machineBusyCores, machineTicks, runBench, treeRssMb } from './lib/processes.js';
import { type Server, startCaddy, startNginxProxy, startOrigin } from './lib/proxies.js';
import { fixed, ratio, report, table, verdict } from './lib/report.js';
import { expectOk, negotiated } from './lib/tls-clients.js';
import { type Figure, measure } from './lib/wrk.js';

const CONNECTIONS = 64;

interface Target {
  name: string;
  url: string;
  pid: number;
  port?: number;
}

/** Figure 1: each target under the same wrk load, and how Portico compares with nginx and Caddy. */
export async function throughput(
  origin: Server,
  edge: EdgeProcess,
  nginx: Server,
  caddy: Server,
): Promise<void> {
  const targets: Target[] = [
    {
      name: 'nginx origin, direct over HTTP (baseline)',
      url: `http://127.0.0.1:${origin.port}/`,
      pid: origin.started.pid,
    },
    {
      name: 'Portico edge, HTTPS',
      url: `https://${WRK_NAME}:${edge.httpsPort}/`,
      pid: edge.started.pid,
      port: edge.httpsPort,
    },
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
  const figures: Figure[] = [];
  /** Proxy CPU µs per request, by figure (NaN for the origin). */
  const cpuPerRequest: number[] = [];
  const usage: (string | number)[][] = [];
  for (const target of targets) {
    if (target.port !== undefined) await expectOk(target.name, target.port, WRK_NAME);
    // Same warm-up for all: JIT, connection pools to the origin, caches.
    await measure(`${target.name} (warm-up)`, target.url, {
      seconds: WARMUP_SECONDS,
      connections: CONNECTIONS,
    });
    const proxyCpu = cpuSeconds(target.pid);
    const originCpu = cpuSeconds(origin.started.pid);
    const machine = machineTicks();
    const figure = await measure(target.name, target.url, { seconds: SECONDS, connections: CONNECTIONS });
    const machineCores = machineBusyCores(machine, SECONDS);
    const proxyCores = (cpuSeconds(target.pid) - proxyCpu) / SECONDS;
    const originCores = (cpuSeconds(origin.started.pid) - originCpu) / SECONDS;
    const usPerRequest =
      target.pid === origin.started.pid
        ? Number.NaN
        : (proxyCores * 1e6) / Math.max(figure.requestsPerSecond, 1);
    figures.push(figure);
    cpuPerRequest.push(usPerRequest);
    usage.push([
      target.name,
      target.port === undefined ? 'HTTP/1.1' : await negotiated(target.port, WRK_NAME),
      target.pid === origin.started.pid ? '–' : fixed(proxyCores),
      fixed(originCores),
      target.pid === origin.started.pid ? '–' : fixed(usPerRequest, 0),
      fixed(treeRssMb(target.pid), 0),
      fixed(machineCores),
    ]);
    // Its p99 again, with every connection open before the load starts (Load.connectionsFirst in
    // bench/lib/wrk.ts): a Node server accepts one connection per loop turn, Go and nginx all at once,
    // and wrk's own p99 counts that start-up against the proxy many times over.
    const latency = await measure(`${target.name} (latency)`, target.url, {
      seconds: SECONDS,
      connections: CONNECTIONS,
      connectionsFirst: true,
    });
    figure.openedFirstP99Ms = latency.p99Ms;
    figure.errors += latency.errors;
  }
  report(
    `### 1. Proxy throughput: ${SECONDS} s each after ${WARMUP_SECONDS} s of warm-up, ${CONNECTIONS} connections, wrk -t2 (ratios to the origin hit directly)`,
    figures,
  );
  table(
    'Where the CPU went (1.00 = one core busy for the whole run; the machine has 2, shared with wrk and with anything else running)',
    [
      'load',
      'TLS',
      'proxy CPU, cores',
      'origin CPU, cores',
      'proxy CPU µs per request',
      'proxy RSS MB',
      'whole machine busy, cores',
    ],
    usage,
    [':---', ':---'],
  );
  const [, portico, nginxFigure, caddyFigure] = figures;
  const [, porticoCpu = NaN, nginxCpu = NaN, caddyCpu = NaN] = cpuPerRequest;
  if (portico && nginxFigure && caddyFigure) {
    const vsCaddy = portico.requestsPerSecond / caddyFigure.requestsPerSecond;
    const vsNginx = portico.requestsPerSecond / nginxFigure.requestsPerSecond;
    table(
      'Portico against the other proxies (same run). Requests per CPU-second of the proxy moves less than req/s when other processes take CPU',
      [
        'ratio',
        'req/s',
        'p99, connections opened first (lower is better)',
        'p99, wrk raw',
        'requests per proxy CPU-second',
        'target',
        'verdict',
      ],
      [
        [
          'Portico ÷ Caddy',
          fixed(vsCaddy),
          ratio(portico.openedFirstP99Ms, caddyFigure.openedFirstP99Ms),
          ratio(portico.p99Ms, caddyFigure.p99Ms),
          fixed(caddyCpu / porticoCpu),
          '≥ 1.00× req/s',
          verdict(vsCaddy >= 1),
        ],
        [
          'Portico ÷ nginx',
          fixed(vsNginx),
          ratio(portico.openedFirstP99Ms, nginxFigure.openedFirstP99Ms),
          ratio(portico.p99Ms, nginxFigure.p99Ms),
          fixed(nginxCpu / porticoCpu),
          '–',
          '–',
        ],
      ],
      [':---'],
    );
  }
}

if (isMain(import.meta.url)) {
  await runBench(async (processes) => {
    const began = performance.now();
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
    const edge = await startMeasuredEdge(processes, dataDir);
    const nginx = await startNginxProxy(processes, WRK_NAME, wrk.files, origin.port);
    const caddy = await startCaddy(processes, WRK_NAME, wrk.files, origin.port);
    await printHeader('proxy throughput', [
      SERVERS_NOTE,
      WRK_NOTE,
      "wrk, nginx and Caddy share the machine's cores",
    ]);
    await throughput(origin, edge, nginx, caddy);
    await stopEdge(processes, edge);
    printEnd(began, 'the edge');
  });
}
