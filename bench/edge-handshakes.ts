/**
 * npm run bench:edge:handshakes — figure 2 of bench:edge, alone: new TLS handshakes per second on
 * Portico's edge. One certificate for every connection (the baseline), against BENCH_EDGE_CERTS
 * (10,000) domains each with its own certificate: first pass cold (every name loaded from the
 * store), then warm; nginx on one certificate as a reference; and what building one TLS context
 * costs, the floor under a name's first handshake.
 *
 * Set-up: the run's CA, the certificates issued by InternalIssuer, an origin for the apps to point
 * at, the edge on a store holding them, and nginx. Environment: BENCH_SECONDS, BENCH_EDGE_CERTS,
 * BENCH_EDGE_CPU_PROF (bench/lib/edge-setup.ts). Every server is a child process on 127.0.0.1,
 * ended in `finally`; temporary directories go too.
 */
import { createSecureContext } from 'node:tls';
import type { IssuedCertificateRow } from './lib/certificates.js';
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
  SECONDS,
  SINGLE_NAME,
  seededDataDir,
  startMeasuredEdge,
  stopEdge,
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
  rssMb,
  runBench,
  treeRssMb,
} from './lib/processes.js';
import { type Server, startNginxProxy, startOrigin } from './lib/proxies.js';
import { fixed, table, verdict } from './lib/report.js';
import { shuffle } from './lib/stats.js';
import { type HandshakeFigure, handshakes } from './lib/tls-clients.js';

/** Portico's edge defaults (src/edge/server.ts): the role passes no other value. */
const SNI_CACHE_SIZE = 10_000;
/** What `portico serve` gives the edge's caches (src/roles.ts): changes are announced, so entries live long. */
const CACHE_TTL_SECONDS = 600;

/** The certificate and key of SINGLE_NAME, opened, for measuring what one TLS context costs to build. */
export function contextSample(
  credentials: Credentials,
  issued: IssuedCertificateRow[],
): { certificatePem: string; privateKeyPem: string } {
  const row = issued.find((candidate) => candidate.hostname === SINGLE_NAME) as IssuedCertificateRow;
  return { certificatePem: row.certificatePem, privateKeyPem: credentials.box.open(row.privateKeyEnc) };
}

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

/** Figure 2: handshakes per second on the edge over 1 name, then over `certNames` cold and warm, then nginx. */
export async function handshakeRates(
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

if (isMain(import.meta.url)) {
  await runBench(async (processes) => {
    const began = performance.now();
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
    const edge = await startMeasuredEdge(processes, dataDir);
    const nginx = await startNginxProxy(processes, WRK_NAME, wrk.files, origin.port);
    await printHeader('new TLS handshakes', [
      issuedNote(issued),
      'every server is one process with one worker (nginx worker_processes 1, Portico: one Node.js process)',
      `nginx serves \`${WRK_NAME}\` with a certificate from the same CA`,
      "nginx and the Node client share the machine's cores",
    ]);
    await handshakeRates(edge, nginx, certNames, contextSample(credentials, issued.rows));
    await stopEdge(processes, edge);
    printEnd(began, 'the edge');
  });
}
