/**
 * npm run bench:edge — Portico's edge against references measured in the same run, on this machine:
 *
 * 1. Proxy throughput (wrk, 64 connections): an nginx origin hit directly (the baseline), then
 *    through Portico's edge, nginx and Caddy, each terminating HTTPS with the same certificate.
 * 2. New TLS handshakes per second on Portico's edge: one certificate for every connection, against
 *    10,000 domains each with its own certificate (first pass cold: every name loaded from the
 *    store; then warm), with nginx on one certificate as a reference.
 * 3. The edge's start time and memory with 100,000 active domains in SQLite, against an empty store.
 *
 * Environment: BENCH_SECONDS (default 10) for each timed load; BENCH_EDGE_CERTS (10000) and
 * BENCH_EDGE_DOMAINS (100000) for the sizes; BENCH_EDGE_CPU_PROF=<dir> to have the edge of parts 1
 * and 2 write a V8 CPU profile there (summarize it with bench/edge/profile-summary.ts).
 *
 * Every server is a child process on 127.0.0.1, ended in `finally`; temporary directories go too.
 */
import { mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { createSecureContext } from 'node:tls';
import {
  caSignedCertificate,
  copyCredentials,
  type IssuedCertificateRow,
  issueCertificates,
  prepareCredentials,
} from './edge/certificates.js';
import { type EdgeProcess, startPorticoEdge } from './edge/portico.js';
import { cpuSeconds, machineBusyCores, machineTicks, Processes, rssMb, treeRssMb } from './edge/processes.js';
import { type Server, startCaddy, startNginxProxy, startOrigin } from './edge/proxies.js';
import { seedStore } from './edge/seed.js';
import { type HandshakeFigure, handshakes, negotiated, requestEach } from './edge/tls-clients.js';
import { type Figure, measure, ratio, report } from './lib.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const WARMUP_SECONDS = Math.min(2, SECONDS);
const CERTS = Number(process.env.BENCH_EDGE_CERTS ?? 10_000);
const DOMAINS = Math.max(Number(process.env.BENCH_EDGE_DOMAINS ?? 100_000), CERTS);
const PROFILE_DIR = process.env.BENCH_EDGE_CPU_PROF
  ? path.resolve(process.env.BENCH_EDGE_CPU_PROF)
  : undefined;
const CONNECTIONS = 64;
const HANDSHAKE_CONCURRENCY = 32;
const START_ROUNDS = 5;
const REQUESTS_AFTER_START = 1_000;
/** Portico's edge defaults (src/edge/server.ts): the role passes no other value. */
const SNI_CACHE_SIZE = 10_000;
/** What `portico serve` gives the edge's caches (src/roles.ts): changes are announced, so entries live long. */
const CACHE_TTL_SECONDS = 600;

const APPS_DOMAIN = 'apps.edge-bench.test';
/** The only name that resolves to 127.0.0.1 here, so wrk (SNI = the URL's host) can use it. */
const WRK_NAME = 'localhost';
const SINGLE_NAME = 'single.edge-bench.test';
const siteName = (i: number) => `site${i}.edge-bench.test`;

const processes = new Processes();
const fixed = (value: number, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a');
const verdict = (ok: boolean) => (ok ? 'met' : '**missed**');
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

function table(title: string, head: string[], rows: (string | number)[][], align?: string[]): void {
  console.log(`\n${title}`);
  console.log(`| ${head.join(' | ')} |`);
  console.log(`|${head.map((_, i) => align?.[i] ?? '---:').join('|')}|`);
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
}

/** Fails loudly when a target does not answer 200 through its proxy before it is loaded. */
async function expectOk(name: string, port: number, servername: string): Promise<void> {
  const { statuses, failed, firstError } = await requestEach(port, [servername], 1);
  if (failed > 0 || statuses.get(200) !== 1) {
    throw new Error(
      `${name} did not answer 200 for ${servername}: ${firstError ?? [...statuses.keys()].join()}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Part 1: proxy throughput
// ---------------------------------------------------------------------------------------------

interface Target {
  name: string;
  url: string;
  pid: number;
  port?: number;
}

async function throughput(origin: Server, edge: EdgeProcess, nginx: Server, caddy: Server): Promise<void> {
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
    // bench/lib.ts): a Node server accepts one connection per loop turn, Go and nginx all at once,
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

// ---------------------------------------------------------------------------------------------
// Part 2: new TLS handshakes per second
// ---------------------------------------------------------------------------------------------

/**
 * What building one TLS context costs (Node's createSecureContext on one of the benchmark's
 * certificates and keys, as the edge builds one for a name's first handshake), median µs, measured
 * in this process while nothing else runs: the floor under a cold handshake's extra cost.
 */
function contextBuildMicros(sample: { certificatePem: string; privateKeyPem: string }): number {
  const build = () => createSecureContext({ cert: sample.certificatePem, key: sample.privateKeyPem });
  for (let i = 0; i < 50; i++) build();
  const micros: number[] = [];
  for (let i = 0; i < 500; i++) {
    const started = process.hrtime.bigint();
    build();
    micros.push(Number(process.hrtime.bigint() - started) / 1000);
  }
  micros.sort((a, b) => a - b);
  return micros[Math.floor(micros.length / 2)] as number;
}

async function handshakeRates(
  edge: EdgeProcess,
  nginx: Server,
  certNames: string[],
  sample: { certificatePem: string; privateKeyPem: string },
): Promise<void> {
  const pid = edge.started.pid;
  const rows: (string | number)[][] = [];
  let baseline: HandshakeFigure | undefined;
  /** Server CPU µs per handshake, by run. */
  const cpuPerHandshake: number[] = [];
  const run = async (
    name: string,
    load: () => Promise<HandshakeFigure>,
    serverPid: number,
  ): Promise<HandshakeFigure> => {
    const cpu = cpuSeconds(serverPid);
    const machine = machineTicks();
    const figure = await load();
    const machineCores = machineBusyCores(machine, figure.seconds);
    const serverCpu = cpuSeconds(serverPid) - cpu;
    const perHandshake = (serverCpu * 1e6) / Math.max(figure.completed, 1);
    cpuPerHandshake.push(perHandshake);
    baseline ??= figure;
    rows.push([
      name,
      figure.completed,
      fixed(figure.seconds, 1),
      fixed(figure.perSecond, 0),
      fixed(figure.perSecond / baseline.perSecond),
      fixed(serverCpu / figure.seconds),
      fixed(perHandshake, 0),
      fixed(figure.clientCpu),
      fixed(machineCores),
      fixed(treeRssMb(serverPid), 0),
      figure.failed === 0 ? 0 : `${figure.failed} (${figure.firstError})`,
    ]);
    return figure;
  };

  const one = () => SINGLE_NAME;
  await handshakes({
    port: edge.httpsPort,
    nextName: one,
    concurrency: HANDSHAKE_CONCURRENCY,
    seconds: WARMUP_SECONDS,
  });
  const single = await run(
    'Portico, 1 certificate (baseline)',
    () =>
      handshakes({
        port: edge.httpsPort,
        nextName: one,
        concurrency: HANDSHAKE_CONCURRENCY,
        seconds: SECONDS,
      }),
    pid,
  );
  const rssOneCertificate = rssMb(pid);
  const order = shuffle([...certNames]);
  let cursor = 0;
  const cold = await run(
    `Portico, ${certNames.length} certificates, cold (each name once, loaded from the store)`,
    () =>
      handshakes({
        port: edge.httpsPort,
        nextName: () => order[cursor++ % order.length] as string,
        concurrency: HANDSHAKE_CONCURRENCY,
        total: order.length,
      }),
    pid,
  );
  const random = () => certNames[Math.floor(Math.random() * certNames.length)] as string;
  const warm = await run(
    `Portico, ${certNames.length} certificates, warm (random names, each loaded before)`,
    () =>
      handshakes({
        port: edge.httpsPort,
        nextName: random,
        concurrency: HANDSHAKE_CONCURRENCY,
        seconds: SECONDS,
      }),
    pid,
  );
  await run(
    'nginx (1 worker), 1 certificate (reference)',
    () =>
      handshakes({
        port: nginx.port,
        nextName: () => WRK_NAME,
        concurrency: HANDSHAKE_CONCURRENCY,
        seconds: SECONDS,
      }),
    nginx.started.pid,
  );

  table(
    `### 2. New TLS handshakes per second: Node client, ${HANDSHAKE_CONCURRENCY} in flight, no session resumption, ${single.protocol ?? '?'} ${single.cipher ?? '?'}, ECDSA P-256`,
    [
      'load',
      'handshakes',
      'seconds',
      'handshakes/s',
      '÷ 1 certificate',
      'server CPU, cores',
      'server CPU µs per handshake',
      'client CPU, cores',
      'whole machine busy, cores',
      'server RSS after, MB',
      'failed',
    ],
    rows,
    [':---'],
  );
  const contextMicros = contextBuildMicros(sample);
  const [singleCpu = NaN, coldCpu = NaN, warmCpu = NaN] = cpuPerHandshake;
  table(
    'Targets (the rate ratio is the target; the ratio of handshakes per server CPU-second, 1 certificate ÷ this, moves less when other processes take CPU)',
    ['figure', 'handshakes/s ratio', 'handshakes per server CPU-second ratio', 'target', 'verdict'],
    [
      [
        `${certNames.length} certificates ÷ 1 certificate (every name's context built before, as Caddy's and nginx's certificates are held in memory)`,
        fixed(warm.perSecond / single.perSecond),
        fixed(singleCpu / warmCpu),
        '≥ 0.90',
        verdict(warm.perSecond / single.perSecond >= 0.9),
      ],
      [
        `${certNames.length} certificates, first handshake of each name ÷ 1 certificate`,
        fixed(cold.perSecond / single.perSecond),
        fixed(singleCpu / coldCpu),
        '– (once per name and renewal)',
        '–',
      ],
    ],
    [':---'],
  );
  console.log(
    `\nA name's first handshake builds its TLS context: Node's createSecureContext on one of these certificates takes ${fixed(contextMicros, 0)} µs here (median of 500, this process), ` +
      `${fixed(contextMicros / singleCpu)}× the server CPU of a whole 1-certificate handshake (${fixed(singleCpu, 0)} µs). ` +
      `So a name's first handshake costs at least ${fixed(1 + contextMicros / singleCpu)}× the server CPU of a cached one (handshakes per CPU-second at most ${fixed(singleCpu / (singleCpu + contextMicros))}×), whatever the store does; ` +
      `here it cost ${fixed(coldCpu / singleCpu)}× (${fixed(coldCpu - singleCpu - contextMicros, 0)} µs beyond the handshake and the context build: reading the route and certificate, unsealing the key, the cache).`,
  );
  const clientBound = [single, warm].filter((figure) => figure.clientCpu >= 0.9).length;
  if (clientBound > 0) {
    console.log(
      `\nThe Node client kept a whole core busy in ${clientBound === 2 ? 'both the 1-certificate and the warm runs' : 'one of the runs compared'}: ` +
        "their handshakes/s is the client's limit as much as the edge's, so the ratio of server CPU per handshake is the one that compares the edge with itself.",
    );
  }
  const perCertificateKib = ((rssMb(pid) - rssOneCertificate) * 1024) / certNames.length;
  const fits = certNames.length <= SNI_CACHE_SIZE;
  const expired = cold.seconds + warm.seconds > CACHE_TTL_SECONDS;
  console.log(
    `\nThe edge's SNI cache holds ${SNI_CACHE_SIZE.toLocaleString('en')} certificates (LRU) for ${CACHE_TTL_SECONDS} s each (the size is the edge's default, the lifetime what \`portico serve\` sets). ` +
      (fits
        ? `All ${certNames.length.toLocaleString('en')} names fit, so the warm pass is all hits`
        : `${certNames.length.toLocaleString('en')} names do not fit: the warm pass misses about ${fixed(100 * (1 - SNI_CACHE_SIZE / certNames.length), 0)}% of the time`) +
      (expired
        ? `, **but cold + warm took ${fixed(cold.seconds + warm.seconds, 0)} s, past the TTL: the names loaded first were loaded again during the warm pass**. `
        : ` (cold + warm took ${fixed(cold.seconds + warm.seconds, 0)} s, within the TTL). `) +
      // Below a few thousand names, heap and JIT growth would swamp the contexts' own memory.
      (certNames.length >= 2_000
        ? `Cached certificates grew the edge's RSS by ${fixed(perCertificateKib, 1)} KiB each, so a full cache is about ${fixed((perCertificateKib * SNI_CACHE_SIZE) / 1024, 0)} MB. `
        : '') +
      `In steady use every name in use is read again once per TTL (${fixed(certNames.length / CACHE_TTL_SECONDS, 0)} reads a second for ${certNames.length.toLocaleString('en')} names), ` +
      'in the background in the last tenth of its lifetime, and an unchanged certificate keeps its TLS context: what a cold handshake costs above a warm one is paid once per name and per renewal, not per TTL.',
  );
}

// ---------------------------------------------------------------------------------------------
// Part 3: start time and memory with 100,000 domains
// ---------------------------------------------------------------------------------------------

async function startAndMemory(
  procs: Processes,
  emptyDir: string,
  fullDir: string,
  certNames: string[],
): Promise<void> {
  const runs: Record<'empty' | 'full', { startMs: number; rss: number }[]> = { empty: [], full: [] };
  let afterRequests:
    | { rss: number; statuses: Map<number, number>; failed: number; firstError?: string }
    | undefined;
  for (let round = 0; round < START_ROUNDS; round++) {
    for (const kind of ['empty', 'full'] as const) {
      const edge = await startPorticoEdge(procs, {
        dataDir: kind === 'empty' ? emptyDir : fullDir,
        appsDomain: APPS_DOMAIN,
      });
      runs[kind].push({ startMs: edge.startMs, rss: rssMb(edge.started.pid) });
      if (kind === 'full' && round === START_ROUNDS - 1) {
        // Distinct names while there are enough, so each request loads a route and a certificate.
        const shuffled = shuffle([...certNames]);
        const sample = Array.from(
          { length: REQUESTS_AFTER_START },
          (_, i) => shuffled[i % shuffled.length] as string,
        );
        const result = await requestEach(edge.httpsPort, sample, HANDSHAKE_CONCURRENCY);
        afterRequests = { rss: rssMb(edge.started.pid), ...result };
      }
      await procs.stop(edge.started);
    }
  }
  const emptyStart = median(runs.empty.map((run) => run.startMs));
  const fullStart = median(runs.full.map((run) => run.startMs));
  const emptyRss = median(runs.empty.map((run) => run.rss));
  const fullRss = median(runs.full.map((run) => run.rss));
  const rows: (string | number)[][] = [
    [
      'empty store (baseline)',
      fixed(emptyStart, 0),
      '1.00',
      runs.empty.map((run) => fixed(run.startMs, 0)).join(', '),
      fixed(emptyRss, 0),
      '1.00',
    ],
    [
      `${DOMAINS.toLocaleString('en')} active domains`,
      fixed(fullStart, 0),
      fixed(fullStart / emptyStart),
      runs.full.map((run) => fixed(run.startMs, 0)).join(', '),
      fixed(fullRss, 0),
      fixed(fullRss / emptyRss),
    ],
  ];
  if (afterRequests) {
    const ok = afterRequests.statuses.get(200) ?? 0;
    rows.push([
      `… then ${REQUESTS_AFTER_START.toLocaleString('en')} HTTPS requests to random served names (${ok} × 200, ${afterRequests.failed} failed)`,
      '–',
      '–',
      '–',
      fixed(afterRequests.rss, 0),
      fixed(afterRequests.rss / emptyRss),
    ]);
  }
  table(
    `### 3. Edge start (spawn of \`portico serve --roles edge\` → "edge listening" line, median of ${START_ROUNDS}) and RSS (VmRSS of the process), SQLite`,
    ['store', 'start ms', '÷ empty', 'each run, ms', 'RSS MB', '÷ empty'],
    rows,
    [':---'],
  );
  const peakRss = Math.max(fullRss, afterRequests?.rss ?? 0);
  table(
    'Targets',
    ['figure', 'value', 'target', 'verdict'],
    [
      [
        `start with ${DOMAINS.toLocaleString('en')} domains`,
        `${fixed(fullStart, 0)} ms`,
        '< 2,000 ms',
        verdict(fullStart < 2000),
      ],
      ['RSS, highest of the two readings', `${fixed(peakRss, 0)} MB`, '< 200 MB', verdict(peakRss < 200)],
    ],
    [':---'],
  );
  if (afterRequests?.firstError) console.log(`\nfirst request error: ${afterRequests.firstError}`);
}

// ---------------------------------------------------------------------------------------------

process.once('SIGINT', () => {
  void processes.stopAll().finally(() => process.exit(130));
});

try {
  const began = performance.now();
  if (PROFILE_DIR) mkdirSync(PROFILE_DIR, { recursive: true });
  const template = processes.tempDir('credentials');
  const box = await prepareCredentials(template);
  const wrkCertificate = caSignedCertificate(template, template, WRK_NAME);
  const certNames = Array.from({ length: CERTS }, (_, i) => siteName(i));
  const issueStarted = performance.now();
  const issued = await issueCertificates(template, [SINGLE_NAME, ...certNames]);
  const issueSeconds = (performance.now() - issueStarted) / 1000;
  const wrkRow: IssuedCertificateRow = {
    hostname: WRK_NAME,
    certificatePem: wrkCertificate.certificatePem,
    privateKeyEnc: box.seal(wrkCertificate.privateKeyPem),
    notBefore: wrkCertificate.notBefore.toISOString(),
    notAfter: wrkCertificate.notAfter.toISOString(),
  };

  const origin = await startOrigin(processes);
  const originUrl = `http://127.0.0.1:${origin.port}`;
  const edgeDir = processes.tempDir('data');
  copyCredentials(template, edgeDir);
  await seedStore({
    dataDir: edgeDir,
    originUrl,
    primaries: [WRK_NAME, SINGLE_NAME],
    domains: certNames,
    perApp: 10,
    certificates: [wrkRow, ...issued],
  });
  const edge = await startPorticoEdge(processes, {
    dataDir: edgeDir,
    appsDomain: APPS_DOMAIN,
    cpuProfileDir: PROFILE_DIR,
  });
  const nginx = await startNginxProxy(processes, WRK_NAME, wrkCertificate, origin.port);
  const caddy = await startCaddy(processes, WRK_NAME, wrkCertificate, origin.port);

  const idle = machineTicks();
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const background = machineBusyCores(idle, 2);
  console.log(
    `## Portico edge benchmark (${new Date().toISOString()}, Node ${process.version}, ${SECONDS} s per load)`,
  );
  console.log(
    `\nCPU busy on this machine before any load (other processes): ${fixed(background)} of ${availableParallelism()} cores` +
      (background > 0.2
        ? ' — **the machine is not idle: absolute figures and ratios are noisier than usual**'
        : ''),
  );
  console.log(
    `\nSet-up: ${issued.length.toLocaleString('en')} certificates issued by InternalIssuer in ${fixed(issueSeconds, 1)} s; ` +
      `every server is one process with one worker (nginx worker_processes 1, Caddy GOMAXPROCS=1, Portico: one Node.js process); ` +
      `the wrk target name is \`${WRK_NAME}\` (the only name resolving to 127.0.0.1 here) with a certificate from the same CA; wrk, nginx, Caddy and the Node client share the machine's cores.`,
  );

  await throughput(origin, edge, nginx, caddy);
  await processes.stop(caddy.started);
  const sampleRow = issued.find((row) => row.hostname === SINGLE_NAME) as IssuedCertificateRow;
  await handshakeRates(edge, nginx, certNames, {
    certificatePem: sampleRow.certificatePem,
    privateKeyPem: box.open(sampleRow.privateKeyEnc),
  });
  await processes.stop(nginx.started);
  await processes.stop(edge.started, PROFILE_DIR ? 30_000 : 5_000);
  const edgeLog = edge.started
    .output()
    .split('\n')
    // The start-up line is shown at any level, as text or as a JSON record (PORTICO_LOG_FORMAT).
    .filter((line) => line.trim() !== '' && !line.includes('Portico edge listening'))
    .join('\n');
  if (edgeLog)
    console.log(
      `\nThe edge logged (warn and above):\n\n    ${edgeLog.split('\n').slice(0, 5).join('\n    ')}`,
    );

  const seedStarted = performance.now();
  const fullDir = processes.tempDir('data-full');
  copyCredentials(template, fullDir);
  await seedStore({
    dataDir: fullDir,
    originUrl,
    domains: Array.from({ length: DOMAINS }, (_, i) => siteName(i)),
    perApp: 10,
    certificates: issued.filter((row) => row.hostname !== SINGLE_NAME),
  });
  const seedSeconds = (performance.now() - seedStarted) / 1000;
  const emptyDir = processes.tempDir('data-empty');
  copyCredentials(template, emptyDir);
  await seedStore({ dataDir: emptyDir, originUrl, domains: [], perApp: 10 });
  console.log(
    `\nStore for part 3: ${DOMAINS.toLocaleString('en')} active domains on ${Math.ceil(DOMAINS / 10).toLocaleString('en')} apps (10 each, none primary, so each name serves itself), inserted in ${fixed(seedSeconds, 1)} s; ` +
      `certificates for ${certNames.length.toLocaleString('en')} of them only: the edge loads a certificate on the first handshake that names it, so the others are never read, and the requests go to names that have one. ` +
      'The empty store has the same CA and API key, so both starts do the same work but for the data.',
  );
  await startAndMemory(processes, emptyDir, fullDir, certNames);
  if (PROFILE_DIR) console.log(`\nCPU profile of the edge of parts 1 and 2: ${PROFILE_DIR}`);
  console.log(`\nWhole benchmark: ${fixed((performance.now() - began) / 1000, 0)} s`);
} finally {
  await processes.stopAll();
}
