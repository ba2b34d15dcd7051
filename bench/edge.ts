/**
 * npm run bench:edge — Portico's edge against references measured in the same run, on this machine,
 * on each runtime side by side (bench/lib/runtimes.ts: the Node running the benchmark, Node 20 here,
 * and the Node LTS Portico is built for, 24): the four figures of bench/edge-throughput.ts,
 * edge-h2.ts, edge-handshakes.ts and edge-start.ts (each also runnable alone, `npm run bench:edge:throughput` …),
 * in one run that takes their set-up once, then every figure again in one table, a column per runtime.
 *
 * 1. Proxy throughput (wrk, 64 connections): an nginx origin hit directly (the baseline), then
 *    through Portico's edge on each runtime, nginx and Caddy, each terminating HTTPS with the same
 *    certificate; BENCH_EDGE_ROUNDS (3) rounds, compared round by round.
 * 2. New TLS handshakes per second on each runtime's edge: one certificate for every connection,
 *    against 10,000 domains each with its own certificate (first pass cold: every name loaded from
 *    the store and its context built; then warm), with nginx on one certificate as a reference; and
 *    what one TLS context costs on each runtime, in time (the floor under a first handshake) and
 *    memory.
 * 3. The edge's start time and memory with 100,000 active domains in SQLite, against an empty
 *    store, and its memory once its default certificate cache is full.
 * 4. HTTP/2 against HTTP/1.1 through each runtime's edge (h2load, the same connections; one stream
 *    per connection and multiplexed), with bare Node's h2 against its HTTPS beside it (edge-h2.ts).
 *
 * Shared: one CA, the certificates issued once (figures 2 and 3), one origin, and one edge per
 * runtime and one nginx proxy for figures 1 and 2 (so each edge's CPU profile, BENCH_EDGE_CPU_PROF,
 * covers both). Environment: BENCH_SECONDS (default 10) for each timed load; BENCH_EDGE_CERTS
 * (10000) and BENCH_EDGE_DOMAINS (100000) for the sizes; BENCH_EDGE_ROUNDS (3);
 * BENCH_EDGE_CPU_PROF=<dir> (summarize a profile with bench/profile-summary.ts); BENCH_NODE_LTS=0
 * to measure the benchmark's own runtime alone.
 *
 * Every server is a child process on 127.0.0.1, ended in `finally`; temporary directories go too.
 */

import { http2Figures } from './edge-h2.js';
import { contextSamples, handshakeRates, roomForEveryName } from './edge-handshakes.js';
import { prepareSnapshotDir, prepareStartStores, startAndMemory, startFromSnapshot } from './edge-start.js';
import { throughput } from './edge-throughput.js';
import {
  certNames as allCertNames,
  issuedNote,
  issueTimed,
  makeCredentials,
  originUrl,
  printEnd,
  printHeader,
  printSideBySide,
  runtimesNote,
  runtimesOrWarn,
  SERVERS_NOTE,
  SINGLE_NAME,
  seededDataDir,
  startMeasuredEdges,
  stopEdges,
  WRK_NAME,
  WRK_NOTE,
  wrkCertificate,
} from './lib/edge-setup.js';
import { runBench } from './lib/processes.js';
import { startCaddy, startNginxProxy, startOrigin } from './lib/proxies.js';

await runBench(async (processes) => {
  const began = performance.now();
  const prepared = runtimesOrWarn();
  const { runtimes } = prepared;
  const credentials = await makeCredentials(processes);
  const wrk = wrkCertificate(credentials);
  const certNames = allCertNames();
  const issued = await issueTimed(credentials, [SINGLE_NAME, ...certNames]);

  const origin = await startOrigin(processes);
  const edgeDir = await seededDataDir(processes, credentials, 'data', {
    originUrl: originUrl(origin),
    primaries: [WRK_NAME, SINGLE_NAME],
    domains: certNames,
    perApp: 10,
    certificates: [wrk.row, ...issued.rows],
  });
  // Room for every name of figure 2 in the certificate cache; figure 3 runs the default.
  const cacheMb = roomForEveryName(issued.rows, credentials.box);
  const edges = await startMeasuredEdges(processes, runtimes, edgeDir, {
    PORTICO_EDGE_CERT_CACHE_MB: cacheMb,
  });
  const nginx = await startNginxProxy(processes, WRK_NAME, wrk.files, origin.port);
  const caddy = await startCaddy(processes, WRK_NAME, wrk.files, origin.port);
  await printHeader(undefined, [
    issuedNote(issued),
    runtimesNote(prepared),
    SERVERS_NOTE,
    `the edges of parts 1 and 2 have PORTICO_EDGE_CERT_CACHE_MB=${cacheMb}, room for every name`,
    WRK_NOTE,
    "wrk, h2load, nginx, Caddy and the Node client share the machine's cores",
  ]);

  const summary = await throughput(origin, edges, nginx, caddy);
  await processes.stop(caddy.started);
  for (const edge of edges) await http2Figures(processes, edge, wrk.files);
  summary.push(
    ...(await handshakeRates(processes, edges, nginx, certNames, contextSamples(credentials, issued.rows))),
  );
  await processes.stop(nginx.started);
  await stopEdges(processes, edges);

  const stores = await prepareStartStores(
    processes,
    credentials,
    origin,
    certNames,
    issued.rows.filter((row) => row.hostname !== SINGLE_NAME),
  );
  summary.push(...(await startAndMemory(processes, runtimes, stores, certNames)));
  const snapshot = await prepareSnapshotDir(processes, credentials, stores.fullDir);
  const requests = Math.min(certNames.length, Math.max(1_000, Math.ceil(stores.defaultCacheHolds * 1.2)));
  summary.push(...(await startFromSnapshot(processes, runtimes, snapshot, certNames, requests)));
  printSideBySide(
    `### Every figure side by side (ratios against baselines of this run; on a machine busy with other work, see "CPU busy … before any load" above, single figures are noisy)`,
    prepared,
    summary,
  );
  printEnd(began, 'the edges of parts 1 and 2');
});
