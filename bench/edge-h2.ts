/**
 * npm run bench:edge:h2 — HTTP/2 against HTTP/1.1 through Portico's edge (issue 14; also part of
 * bench:edge): requests per second, p99 and the edge's CPU per request, with h2load (Debian's
 * nghttp2-client) speaking h2 and, with `--h1`, HTTP/1.1 to the same edge, certificate, origin and
 * target. Target: h2 >= 0.9x HTTP/1.1 in req/s, one stream per connection.
 *
 * The h2load settings, and why:
 * - `-c 64 -m 1`, both protocols: the same connections and the same 64 requests in flight, as
 *   bench:edge:throughput loads with wrk. One stream per connection is HTTP/2 at its least
 *   favourable (all of its per-stream work, none of its multiplexing): the target's figure.
 * - `-c 8 -m 8`, h2 only, against the HTTP/1.1 load above: browsers multiplex (one connection per
 *   site, many streams on it, where HTTP/1.1 opens up to six connections and queues the rest), so
 *   this is what h2 traffic looks like; the same 64 requests in flight, so the p99s compare.
 *   HTTP/1.1 gets no `-m 8`: that would be pipelining, which no browser does.
 * - `-D` seconds (BENCH_SECONDS) after `--warm-up-time` on the same connections: every TLS
 *   handshake is done before the measured part, which counts only requests. `-t 1`: one h2load
 *   thread, whose CPU is printed (it is far from a core: h2load is not what limits these figures).
 *
 * The floor, measured in the same run with the same settings: a bare node:https server against a
 * bare node:http2 server answering the origin's body at once, no proxying (bench/h2-floor-server.ts,
 * the edge's certificate and TLS profile): the runtime's own cost of h2 against HTTP/1.1, with
 * node:http2's core API (which the edge serves h2 streams with) and its compatibility API.
 *
 * The machine is shared (2 cores: the edge, the origin, h2load, and whatever else runs), so
 * absolute figures move from run to run. Each round measures every load once, in a new random
 * order; a ratio is taken within a round and the median of BENCH_H2_ROUNDS (default 3) rounds is
 * printed with its range. Requests per server CPU-second is the steadier figure when other
 * processes take CPU.
 */
import path from 'node:path';
import type { CertificateFiles } from './lib/certificates.js';
import {
  makeCredentials,
  originUrl,
  printEnd,
  printHeader,
  SECONDS,
  SERVERS_NOTE,
  seededDataDir,
  startMeasuredEdges,
  stopEdges,
  WARMUP_SECONDS,
  WRK_NAME,
  wrkCertificate,
} from './lib/edge-setup.js';
import { type H2Figure, type H2Load, h2load } from './lib/h2load.js';
import type { EdgeProcess } from './lib/portico-edge.js';
import { isMain, type Processes, runBench, type Started, waitForOutput } from './lib/processes.js';
import { startOrigin } from './lib/proxies.js';
import { fixed, table, verdict } from './lib/report.js';
import { type Runtime, thisRuntime } from './lib/runtimes.js';
import { median, shuffle } from './lib/stats.js';
import { expectOk } from './lib/tls-clients.js';

const ROUNDS = Math.max(1, Number(process.env.BENCH_H2_ROUNDS ?? 3));
const CONNECTIONS = 64;
const MULTIPLEXED = { connections: 8, streams: 8 };
const TARGET = 0.9;

const here = path.dirname(new URL(import.meta.url).pathname);

type Shape = 'one stream per connection' | 'multiplexed';

interface Load {
  /** Which server, as the tables name it. */
  subject: string;
  protocol: H2Load['protocol'];
  shape: Shape;
  url: string;
  pid: number;
}

const settings = (load: Load): H2Load => ({
  protocol: load.protocol,
  ...(load.shape === 'multiplexed' ? MULTIPLEXED : { connections: CONNECTIONS, streams: 1 }),
  seconds: SECONDS,
  warmUpSeconds: WARMUP_SECONDS,
});

const flags = (load: Load): string => {
  const { connections, streams } = settings(load);
  return `${load.protocol === 'http/1.1' ? '--h1 ' : ''}-c ${connections} -m ${streams}`;
};

const key = (load: Pick<Load, 'subject' | 'protocol' | 'shape'>) =>
  `${load.subject}|${load.protocol}|${load.shape}`;

type FloorKind = 'https' | 'h2-stream' | 'h2-compat';

const FLOOR_NAMES: Record<FloorKind, string> = {
  https: 'bare node:https',
  'h2-stream': 'bare node:http2, core API',
  'h2-compat': 'bare node:http2, compatibility API',
};

async function startFloor(
  processes: Processes,
  kind: FloorKind,
  certificate: CertificateFiles,
  runtime: Runtime,
): Promise<{ started: Started; url: string }> {
  // On the edge's runtime: the floor is that runtime's own cost of h2 (Node 24's nghttp2 and
  // node:http2 are not Node 20's).
  const started = processes.start(
    `${FLOOR_NAMES[kind]} (${runtime.label})`,
    runtime.node,
    ['--import', 'tsx', path.join(here, 'h2-floor-server.ts'), kind],
    { ...process.env, BENCH_CERT_FILE: certificate.certFile, BENCH_KEY_FILE: certificate.keyFile },
  );
  const match = await waitForOutput(started, /listening on https:\/\/127\.0\.0\.1:(\d+)/);
  return { started, url: `https://${WRK_NAME}:${match[1]}/` };
}

/**
 * The figure: every load ROUNDS times, then the tables. `certificate` is the edge's certificate
 * for WRK_NAME, which the floor's servers present too.
 */
export async function http2Figures(
  processes: Processes,
  edge: EdgeProcess,
  certificate: CertificateFiles,
): Promise<void> {
  const floor = {
    https: await startFloor(processes, 'https', certificate, edge.runtime),
    stream: await startFloor(processes, 'h2-stream', certificate, edge.runtime),
    compat: await startFloor(processes, 'h2-compat', certificate, edge.runtime),
  };
  try {
    await expectOk('Portico edge', edge.httpsPort, WRK_NAME);
    const edgeUrl = `https://${WRK_NAME}:${edge.httpsPort}/`;
    const EDGE = 'Portico edge';
    const loads: Load[] = [
      {
        subject: EDGE,
        protocol: 'http/1.1',
        shape: 'one stream per connection',
        url: edgeUrl,
        pid: edge.started.pid,
      },
      {
        subject: EDGE,
        protocol: 'h2',
        shape: 'one stream per connection',
        url: edgeUrl,
        pid: edge.started.pid,
      },
      { subject: EDGE, protocol: 'h2', shape: 'multiplexed', url: edgeUrl, pid: edge.started.pid },
    ];
    const https = { url: floor.https.url, pid: floor.https.started.pid };
    loads.push({
      subject: FLOOR_NAMES.https,
      protocol: 'http/1.1',
      shape: 'one stream per connection',
      ...https,
    });
    for (const [kind, server] of [
      ['h2-stream', floor.stream],
      ['h2-compat', floor.compat],
    ] as const) {
      for (const shape of ['one stream per connection', 'multiplexed'] as const)
        loads.push({
          subject: FLOOR_NAMES[kind],
          protocol: 'h2',
          shape,
          url: server.url,
          pid: server.started.pid,
        });
    }

    const figures = new Map<string, H2Figure[]>();
    for (let round = 1; round <= ROUNDS; round++) {
      for (const load of shuffle([...loads])) {
        const figure = await h2load(
          `${load.subject} ${flags(load)} (round ${round})`,
          load.url,
          settings(load),
          load.pid,
        );
        figures.set(key(load), [...(figures.get(key(load)) ?? []), figure]);
      }
    }
    printTables(loads, figures, EDGE, edge.runtime.label);
  } finally {
    for (const server of Object.values(floor)) await processes.stop(server.started);
  }
}

/** Median and range of `values`, as `median (min–max)`. */
const spread = (values: number[], digits = 2): string =>
  values.length > 1
    ? `${fixed(median(values), digits)} (${fixed(Math.min(...values), digits)}–${fixed(Math.max(...values), digits)})`
    : fixed(values[0] ?? Number.NaN, digits);

function printTables(
  loads: Load[],
  figures: Map<string, H2Figure[]>,
  edgeName: string,
  runtimeLabel: string,
): void {
  const of = (load: Pick<Load, 'subject' | 'protocol' | 'shape'>) => figures.get(key(load)) ?? [];
  console.log(`\n### HTTP/2 against HTTP/1.1 (h2load), the edge and the floor on ${runtimeLabel}`);
  console.log(
    `\nh2load settings: \`-c ${CONNECTIONS} -m 1\` for both protocols, the same connections and ${CONNECTIONS} requests in flight as bench:edge:throughput's wrk: h2 at its least favourable, one stream per connection (the target's figure). ` +
      `\`-c ${MULTIPLEXED.connections} -m ${MULTIPLEXED.streams}\` for h2 only, as browsers use it (one connection, many streams), against the same HTTP/1.1 load: the same ${MULTIPLEXED.connections * MULTIPLEXED.streams} requests in flight (HTTP/1.1 with \`-m\` above 1 would be pipelining, which no browser does). ` +
      `\`-D ${SECONDS}\` after \`--warm-up-time=${WARMUP_SECONDS}\` on the same connections (handshakes done before the measured part), \`-t 1\`. ` +
      `Every load ${ROUNDS} time(s), each round in a new random order; ratios are taken within a round. The machine's cores are shared with other processes: the range shows how much the figures moved.`,
  );
  table(
    `Each load: ${SECONDS} s measured after ${WARMUP_SECONDS} s of warm-up, medians (range over rounds)`,
    [
      'server',
      'protocol',
      'h2load',
      'req/s',
      'p99 ms',
      'server CPU µs per request',
      'h2load CPU, cores',
      'whole machine busy, cores',
      'failed',
    ],
    loads.map((load) => {
      const runs = of(load);
      return [
        load.subject,
        load.protocol,
        `\`${flags(load)}\``,
        spread(
          runs.map((run) => run.requestsPerSecond),
          0,
        ),
        spread(
          runs.map((run) => run.p99Ms),
          1,
        ),
        spread(
          runs.map((run) => run.serverCpuPerRequest * 1e6),
          0,
        ),
        fixed(median(runs.map((run) => run.clientCores))),
        fixed(median(runs.map((run) => run.machineCores))),
        runs.reduce((sum, run) => sum + run.errors, 0),
      ];
    }),
    [':---', ':---', ':---'],
  );

  /** h2 ÷ HTTP/1.1 of one measure, round by round. */
  const ratios = (h2: H2Figure[], h1: H2Figure[], measure: (figure: H2Figure) => number) =>
    h2.map((figure, i) => measure(figure) / measure(h1[i] as H2Figure));
  const rows: (string | number)[][] = [];
  /** Medians, one stream per connection: the edge's two ratios, and the extra µs h2 costs each server. */
  const oneStream = { rps: Number.NaN, perCpu: Number.NaN, extraUs: new Map<string, number>() };
  for (const load of loads) {
    if (load.protocol !== 'h2') continue;
    const h2 = of(load);
    const h1Subject = load.subject === edgeName ? edgeName : FLOOR_NAMES.https;
    const h1 = of({ subject: h1Subject, protocol: 'http/1.1', shape: 'one stream per connection' });
    const rps = ratios(h2, h1, (figure) => figure.requestsPerSecond);
    const perCpu = ratios(h2, h1, (figure) => 1 / figure.serverCpuPerRequest);
    const extraUs = h2.map(
      (figure, i) => (figure.serverCpuPerRequest - (h1[i] as H2Figure).serverCpuPerRequest) * 1e6,
    );
    const isTarget = load.subject === edgeName && load.shape === 'one stream per connection';
    if (isTarget) Object.assign(oneStream, { rps: median(rps), perCpu: median(perCpu) });
    if (load.shape === 'one stream per connection') oneStream.extraUs.set(load.subject, median(extraUs));
    rows.push([
      load.subject === edgeName ? `**${load.subject}**` : load.subject,
      `\`${flags(load)}\` ÷ \`--h1 -c ${CONNECTIONS} -m 1\``,
      spread(rps),
      spread(ratios(h2, h1, (figure) => figure.p99Ms)),
      spread(perCpu),
      spread(extraUs, 0),
      isTarget ? `≥ ${fixed(TARGET)}× req/s` : '–',
      isTarget ? verdict(median(rps) >= TARGET) : '–',
    ]);
  }
  table(
    'h2 ÷ HTTP/1.1, each ratio taken within a round (median, range over rounds). The floor rows are bare Node, no proxying: what the runtime itself costs for h2 against HTTP/1.1',
    [
      'server',
      'loads',
      'req/s ratio',
      'p99 ratio (lower is better)',
      'requests per server CPU-second ratio',
      'h2 − HTTP/1.1, server CPU µs per request',
      'target',
      'verdict',
    ],
    rows,
    [':---', ':---'],
  );
  const extra = (subject: string) => fixed(oneStream.extraUs.get(subject) ?? Number.NaN, 0);
  console.log(
    `\nThe edge, h2 ÷ HTTP/1.1 with one stream per connection: ${fixed(oneStream.rps)}× in req/s (target ≥ ${fixed(TARGET)}×: ${verdict(oneStream.rps >= TARGET)}), ` +
      `${fixed(oneStream.perCpu)}× in requests per edge CPU-second (the steadier figure when other processes take CPU: ${verdict(oneStream.perCpu >= TARGET)}). ` +
      `An h2 request costs the edge ${extra(edgeName)} µs of CPU more than an HTTP/1.1 one; bare Node's h2 costs ${extra(FLOOR_NAMES['h2-stream'])} µs more than its HTTPS on the core API (the edge's), ` +
      `${extra(FLOOR_NAMES['h2-compat'])} µs on the compatibility API: that much of the gap is the runtime's.`,
  );
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
    // The runtime of this run alone: bench:edge measures h2 on every runtime side by side.
    const edges = await startMeasuredEdges(processes, [thisRuntime()], dataDir);
    await printHeader('HTTP/2 against HTTP/1.1', [
      SERVERS_NOTE,
      `the target name is \`${WRK_NAME}\` (the only name resolving to 127.0.0.1 here) with a certificate from the run's CA`,
      "h2load, the origin and the floor's servers share the machine's cores",
    ]);
    for (const edge of edges) await http2Figures(processes, edge, wrk.files);
    await stopEdges(processes, edges);
    printEnd(began, 'the edge');
  });
}
