/**
 * npm run bench:edge:handshakes — figure 2 of bench:edge, alone: new TLS handshakes per second on
 * Portico's edge, on each runtime measured (bench/lib/runtimes.ts). One certificate for every
 * connection (each runtime's baseline), against BENCH_EDGE_CERTS (10,000) domains each with its own
 * certificate: first pass cold (every name loaded from the store, its TLS context built), then warm
 * (cached); nginx on one certificate as a reference. Then what one TLS context costs on each runtime
 * (the floor under a name's first handshake, and the memory of a cached certificate).
 *
 * Set-up: the run's CA, the certificates issued by InternalIssuer, an origin for the apps to point
 * at, an edge per runtime on a store holding them (with room in its certificate cache for every
 * name: see `roomForEveryName`), and nginx. Environment: BENCH_SECONDS, BENCH_EDGE_CERTS,
 * BENCH_EDGE_CPU_PROF (bench/lib/edge-setup.ts), BENCH_NODE_LTS (bench/lib/runtimes.ts). Every
 * server is a child process on 127.0.0.1, ended in `finally`; temporary directories go too.
 */
import { certificateCacheBytes, DEFAULT_CERT_CACHE_MB } from '../src/edge/sni-cache.js';
import type { IssuedCertificateRow } from './lib/certificates.js';
import { type CertificateAndKey, type ContextCost, contextCost } from './lib/context-cost.js';
import {
  certNames as allCertNames,
  type Credentials,
  HANDSHAKE_CONCURRENCY,
  issuedNote,
  issueTimed,
  makeCredentials,
  originUrl,
  printEnd,
  printHeader,
  printSideBySide,
  runtimesNote,
  runtimesOrWarn,
  SECONDS,
  SINGLE_NAME,
  seededDataDir,
  startMeasuredEdges,
  stopEdges,
  WARMUP_SECONDS,
  WRK_NAME,
  wrkCertificate,
} from './lib/edge-setup.js';
import type { EdgeProcess } from './lib/portico-edge.js';
import {
  cpuSeconds,
  isMain,
  machineBusyCores,
  machineTicks,
  type Processes,
  rssMb,
  runBench,
  treeRssMb,
} from './lib/processes.js';
import { type Server, startNginxProxy, startOrigin } from './lib/proxies.js';
import { cell, fixed, type SummaryRow, table, verdict } from './lib/report.js';
import { median, shuffle } from './lib/stats.js';
import { type HandshakeFigure, handshakes } from './lib/tls-clients.js';

/** What `portico serve` gives the edge's caches (src/roles.ts): changes are announced, so entries live long. */
const CACHE_TTL_SECONDS = 600;
/** Certificates whose contexts the memory figure holds at once, on each runtime. */
const CONTEXT_SAMPLE = 1_000;
/** The first-handshake target applies from this Node major on (issue 14: Node 24). */
const FIRST_HANDSHAKE_TARGET_FROM_MAJOR = 24;
const FIRST_HANDSHAKE_TARGET = 0.7;

/**
 * The certificate cache the handshake figure's edges get (PORTICO_EDGE_CERT_CACHE_MB): room for
 * every one of `names` names, as Caddy and nginx hold their certificates in memory, so the warm pass
 * measures handshakes among many cached names and not the cache's evictions. The edge's default
 * (DEFAULT_CERT_CACHE_MB) holds fewer: it is sized for the memory target, checked by figure 3.
 */
export function roomForEveryName(certificates: IssuedCertificateRow[], box: Credentials['box']): string {
  const bytes = certificates.reduce(
    (sum, row) =>
      sum +
      certificateCacheBytes({
        certificatePem: row.certificatePem,
        privateKeyPem: box.open(row.privateKeyEnc),
      }),
    0,
  );
  return String(Math.ceil((bytes * 1.1) / 2 ** 20));
}

/** Certificates and keys, opened, for measuring what a TLS context costs: distinct ones, CONTEXT_SAMPLE at most. */
export function contextSamples(
  credentials: Credentials,
  issued: IssuedCertificateRow[],
): CertificateAndKey[] {
  return issued.slice(0, CONTEXT_SAMPLE).map((row) => ({
    certificatePem: row.certificatePem,
    privateKeyPem: credentials.box.open(row.privateKeyEnc),
  }));
}

interface RuntimeHandshakes {
  edge: EdgeProcess;
  single: HandshakeFigure;
  cold: HandshakeFigure;
  warm: HandshakeFigure;
  /** Server CPU µs per handshake. */
  singleCpu: number;
  coldCpu: number;
  warmCpu: number;
  /** The edge's RSS growth per certificate it cached, KiB. */
  kibPerCachedName: number;
  cost: ContextCost;
}

/**
 * Figure 2: handshakes per second on each edge over 1 name, then over `certNames` cold and warm,
 * then nginx; then each runtime's context cost. Returns the lines of the run's closing table.
 */
export async function handshakeRates(
  processes: Processes,
  edges: EdgeProcess[],
  nginx: Server,
  certNames: string[],
  samples: CertificateAndKey[],
): Promise<SummaryRow[]> {
  const rows: (string | number)[][] = [];
  const run = async (
    name: string,
    load: () => Promise<HandshakeFigure>,
    serverPid: number,
    baseline?: HandshakeFigure,
  ): Promise<{ figure: HandshakeFigure; cpuPerHandshake: number }> => {
    const cpu = cpuSeconds(serverPid);
    const machine = machineTicks();
    const figure = await load();
    const machineCores = machineBusyCores(machine, figure.seconds);
    const serverCpu = cpuSeconds(serverPid) - cpu;
    const cpuPerHandshake = (serverCpu * 1e6) / Math.max(figure.completed, 1);
    rows.push([
      name,
      figure.completed,
      fixed(figure.seconds, 1),
      fixed(figure.perSecond, 0),
      baseline ? fixed(figure.perSecond / baseline.perSecond) : '1.00',
      fixed(serverCpu / figure.seconds),
      fixed(cpuPerHandshake, 0),
      fixed(figure.clientCpu),
      fixed(machineCores),
      fixed(treeRssMb(serverPid), 0),
      figure.failed === 0 ? 0 : `${figure.failed} (${figure.firstError})`,
    ]);
    return { figure, cpuPerHandshake };
  };

  const results: Omit<RuntimeHandshakes, 'cost'>[] = [];
  for (const edge of edges) {
    const { label } = edge.runtime;
    const pid = edge.started.pid;
    const one = () => SINGLE_NAME;
    await handshakes({
      port: edge.httpsPort,
      nextName: one,
      concurrency: HANDSHAKE_CONCURRENCY,
      seconds: WARMUP_SECONDS,
    });
    const single = await run(
      `Portico on ${label}, 1 certificate (baseline)`,
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
      `Portico on ${label}, ${certNames.length} certificates, cold (each name once: loaded from the store, context built)`,
      () =>
        handshakes({
          port: edge.httpsPort,
          nextName: () => order[cursor++ % order.length] as string,
          concurrency: HANDSHAKE_CONCURRENCY,
          total: order.length,
        }),
      pid,
      single.figure,
    );
    const random = () => certNames[Math.floor(Math.random() * certNames.length)] as string;
    const warm = await run(
      `Portico on ${label}, ${certNames.length} certificates, warm (random names, each cached)`,
      () =>
        handshakes({
          port: edge.httpsPort,
          nextName: random,
          concurrency: HANDSHAKE_CONCURRENCY,
          seconds: SECONDS,
        }),
      pid,
      single.figure,
    );
    results.push({
      edge,
      single: single.figure,
      cold: cold.figure,
      warm: warm.figure,
      singleCpu: single.cpuPerHandshake,
      coldCpu: cold.cpuPerHandshake,
      warmCpu: warm.cpuPerHandshake,
      // Below a few thousand names, heap and JIT growth would swamp the contexts' own memory.
      kibPerCachedName:
        certNames.length >= 2_000 ? ((rssMb(pid) - rssOneCertificate) * 1024) / certNames.length : Number.NaN,
    });
  }
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
  const first = results[0]?.single;
  table(
    `### 2. New TLS handshakes per second: Node client (${process.version}, the same for every server), ${HANDSHAKE_CONCURRENCY} in flight, no session resumption, ${first?.protocol ?? '?'} ${first?.cipher ?? '?'}, ECDSA P-256`,
    [
      'load',
      'handshakes',
      'seconds',
      'handshakes/s',
      '÷ 1 certificate (same runtime)',
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

  // Measured while no load runs: the edges are idle from here on.
  const measured: RuntimeHandshakes[] = [];
  for (const result of results) {
    measured.push({ ...result, cost: await contextCost(processes, result.edge.runtime, samples) });
  }
  const counted = median(samples.map((sample) => certificateCacheBytes(sample))) / 1024;
  return printTargets(measured, certNames.length, counted);
}

/** `countedKib`: what the edge's certificate cache counts one of these certificates as (certificateCacheBytes). */
function printTargets(results: RuntimeHandshakes[], names: number, countedKib: number): SummaryRow[] {
  const targetRows: (string | number)[][] = [];
  const floorRows: (string | number)[][] = [];
  const memoryRows: (string | number)[][] = [];
  const summary = {
    warm: {
      figure: `cached handshakes/s: ${names} certificates ÷ 1`,
      target: '≥ 0.90',
      byRuntime: new Map(),
    },
    first: {
      figure: "a name's first handshake ÷ a cached one, handshakes/s",
      target: `≥ ${fixed(FIRST_HANDSHAKE_TARGET)} on Node ${FIRST_HANDSHAKE_TARGET_FROM_MAJOR}`,
      byRuntime: new Map(),
    },
    firstCpu: {
      figure: "a name's first handshake ÷ a cached one, per server CPU-second (its floor)",
      target: '–',
      byRuntime: new Map(),
    },
    build: { figure: 'createSecureContext, µs (median)', target: '–', byRuntime: new Map() },
    context: { figure: 'memory of a TLS context alone, KiB', target: '–', byRuntime: new Map() },
    cached: { figure: "the edge's RSS per cached certificate, KiB", target: '–', byRuntime: new Map() },
    counted: {
      figure: `what the certificate cache counts one as (${fixed(countedKib, 1)} KiB) ÷ the edge's RSS per cached certificate`,
      target: '≥ 1.00',
      byRuntime: new Map(),
    },
  } satisfies Record<string, SummaryRow>;
  for (const result of results) {
    const { runtime } = result.edge;
    const label = runtime.label;
    const warmRatio = result.warm.perSecond / result.single.perSecond;
    const firstRatio = result.cold.perSecond / result.warm.perSecond;
    const firstTargeted = Number(runtime.version.slice(1).split('.')[0]) >= FIRST_HANDSHAKE_TARGET_FROM_MAJOR;
    const build = result.cost.buildMicros;
    // A first handshake does what a cached one does, and builds the name's context: at best its
    // handshakes per CPU-second are cached ÷ (cached + build) of a cached one's.
    const floor = result.warmCpu / (result.warmCpu + build);
    const firstCpu = result.warmCpu / result.coldCpu;
    targetRows.push(
      [
        `${label}: ${names} certificates ÷ 1 certificate, cached (every name's context built before, as Caddy's and nginx's certificates are held in memory)`,
        fixed(warmRatio),
        fixed(result.singleCpu / result.warmCpu),
        '≥ 0.90',
        verdict(warmRatio >= 0.9),
      ],
      [
        `${label}: a name's first handshake ÷ a cached one (cold ÷ warm pass, same names)`,
        fixed(firstRatio),
        fixed(firstCpu),
        `≥ ${fixed(FIRST_HANDSHAKE_TARGET)} on Node ${FIRST_HANDSHAKE_TARGET_FROM_MAJOR}`,
        firstTargeted ? verdict(firstRatio >= FIRST_HANDSHAKE_TARGET) : '–',
      ],
    );
    floorRows.push([
      label,
      fixed(build, 0),
      fixed(result.warmCpu, 0),
      fixed(result.coldCpu, 0),
      fixed(floor),
      fixed(firstCpu),
      fixed(result.coldCpu - result.warmCpu - build, 0),
    ]);
    // The cache's budget bounds real memory only while it counts a certificate as at least this.
    const covered = countedKib / result.kibPerCachedName;
    memoryRows.push([
      `${label} (OpenSSL ${runtime.openssl})`,
      fixed(result.cost.kibPerContext, 1),
      fixed(result.kibPerCachedName, 1),
      fixed(covered),
      Number.isFinite(covered) ? verdict(covered >= 1) : '–',
    ]);
    summary.counted.byRuntime.set(
      label,
      cell(fixed(covered), Number.isFinite(covered) ? covered >= 1 : undefined),
    );
    summary.warm.byRuntime.set(label, cell(fixed(warmRatio), warmRatio >= 0.9));
    summary.first.byRuntime.set(
      label,
      cell(fixed(firstRatio), firstTargeted ? firstRatio >= FIRST_HANDSHAKE_TARGET : undefined),
    );
    summary.firstCpu.byRuntime.set(label, `${fixed(firstCpu)} (${fixed(floor)})`);
    summary.build.byRuntime.set(label, fixed(build, 0));
    summary.context.byRuntime.set(label, fixed(result.cost.kibPerContext, 1));
    summary.cached.byRuntime.set(label, fixed(result.kibPerCachedName, 1));
  }
  table(
    'Targets (the rate ratio is the target; the ratio of handshakes per server CPU-second moves less when other processes take CPU)',
    ['figure', 'handshakes/s ratio', 'handshakes per server CPU-second ratio', 'target', 'verdict'],
    targetRows,
    [':---'],
  );
  table(
    "A name's first handshake against its floor: it does what a cached one does and builds the name's TLS context (createSecureContext on its certificate and key: median of 500 on that runtime, in a process of its own while nothing else of the benchmark ran), so its handshakes per server CPU-second are at best cached ÷ (cached + build) of a cached one's",
    [
      'runtime',
      'createSecureContext µs',
      'server CPU µs, cached handshake',
      'server CPU µs, first handshake',
      'floor: cached ÷ (cached + build)',
      'measured: cached ÷ first',
      'µs beyond handshake and build (route and certificate read, key unsealed, cache)',
    ],
    floorRows,
    [':---'],
  );
  const [any] = results;
  table(
    `Memory of a cached certificate: a TLS context alone (the RSS growth of a process holding ${any?.cost.contexts ?? '?'} of them, distinct, after garbage collection), and the edge's RSS growth per certificate over the cold pass (its context, the name's route, and whatever else the first visit left)`,
    [
      'runtime',
      'TLS context alone, KiB',
      "edge's RSS per cached certificate, KiB",
      `counted by the cache (${fixed(countedKib, 1)} KiB) ÷ edge's RSS per certificate (target ≥ 1.00)`,
      'verdict',
    ],
    memoryRows,
    [':---'],
  );
  const cold = results.reduce((sum, result) => sum + result.cold.seconds + result.warm.seconds, 0);
  console.log(
    `\nThe edges kept every certificate cached for ${CACHE_TTL_SECONDS} s (the lifetime \`portico serve\` sets), with a certificate cache sized to hold all ${names.toLocaleString('en')} names (the default, ${DEFAULT_CERT_CACHE_MB} MiB, holds fewer: see part 3). ` +
      (cold / results.length > CACHE_TTL_SECONDS
        ? `**Cold + warm took ${fixed(cold / results.length, 0)} s per runtime, past the TTL: names loaded first were loaded again during the warm pass.** `
        : '') +
      'In steady use every name in use is read again once per TTL, in the background in the last tenth of its lifetime, and an unchanged certificate keeps its TLS context: what a first handshake costs above a cached one is paid once per name and per renewal (and after an eviction).',
  );
  return Object.values(summary);
}

if (isMain(import.meta.url)) {
  await runBench(async (processes) => {
    const began = performance.now();
    const prepared = runtimesOrWarn();
    const { runtimes } = prepared;
    const credentials = await makeCredentials(processes);
    const wrk = wrkCertificate(credentials);
    const certNames = allCertNames();
    const issued = await issueTimed(credentials, [SINGLE_NAME, ...certNames]);
    const origin = await startOrigin(processes);
    const dataDir = await seededDataDir(processes, credentials, 'data', {
      originUrl: originUrl(origin),
      primaries: [SINGLE_NAME],
      domains: certNames,
      perApp: 10,
      certificates: issued.rows,
    });
    const cacheMb = roomForEveryName(issued.rows, credentials.box);
    const edges = await startMeasuredEdges(processes, runtimes, dataDir, {
      PORTICO_EDGE_CERT_CACHE_MB: cacheMb,
    });
    const nginx = await startNginxProxy(processes, WRK_NAME, wrk.files, origin.port);
    await printHeader('new TLS handshakes', [
      issuedNote(issued),
      runtimesNote(prepared),
      `every server is one process with one worker (nginx worker_processes 1, Portico: one Node.js process, PORTICO_EDGE_CERT_CACHE_MB=${cacheMb})`,
      `nginx serves \`${WRK_NAME}\` with a certificate from the same CA`,
      "nginx and the Node client share the machine's cores",
    ]);
    const summary = await handshakeRates(
      processes,
      edges,
      nginx,
      certNames,
      contextSamples(credentials, issued.rows),
    );
    await stopEdges(processes, edges);
    printSideBySide('### Side by side', prepared, summary);
    printEnd(began, 'the edges');
  });
}
