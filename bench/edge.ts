/**
 * npm run bench:edge — Portico's edge against references measured in the same run, on this machine:
 * the four figures of bench/edge-throughput.ts, edge-h2.ts, edge-handshakes.ts and edge-start.ts
 * (each also runnable alone, `npm run bench:edge:throughput` …), in one run that takes their set-up
 * once.
 *
 * 1. Proxy throughput (wrk, 64 connections): an nginx origin hit directly (the baseline), then
 *    through Portico's edge, nginx and Caddy, each terminating HTTPS with the same certificate.
 * 2. New TLS handshakes per second on Portico's edge: one certificate for every connection, against
 *    10,000 domains each with its own certificate (first pass cold: every name loaded from the
 *    store; then warm), with nginx on one certificate as a reference.
 * 3. The edge's start time and memory with 100,000 active domains in SQLite, against an empty store.
 * 4. HTTP/2 against HTTP/1.1 through the edge (h2load, the same connections; one stream per
 *    connection and multiplexed), with bare Node's h2 against its HTTPS beside it (edge-h2.ts).
 *
 * Shared: one CA, the certificates issued once (figures 2 and 3), one origin, one edge for figures
 * 1, 4 and 2 (run in that order; the edge's CPU profile, BENCH_EDGE_CPU_PROF, covers all three) and
 * one nginx proxy for figures 1 and 2.
 * Environment: BENCH_SECONDS (default 10) for each timed load; BENCH_EDGE_CERTS (10000) and
 * BENCH_EDGE_DOMAINS (100000) for the sizes; BENCH_EDGE_CPU_PROF=<dir> (summarize the profile with
 * bench/profile-summary.ts).
 *
 * Every server is a child process on 127.0.0.1, ended in `finally`; temporary directories go too.
 */
import { http2Figures } from './edge-h2.js';
import { contextSample, handshakeRates } from './edge-handshakes.js';
import { prepareStartStores, startAndMemory } from './edge-start.js';
import { throughput } from './edge-throughput.js';
import {
  certNames as allCertNames,
  issuedNote,
  issueTimed,
  makeCredentials,
  originUrl,
  printEnd,
  printHeader,
  SERVERS_NOTE,
  SINGLE_NAME,
  seededDataDir,
  startMeasuredEdge,
  stopEdge,
  WRK_NAME,
  WRK_NOTE,
  wrkCertificate,
} from './lib/edge-setup.js';
import { runBench } from './lib/processes.js';
import { startCaddy, startNginxProxy, startOrigin } from './lib/proxies.js';

await runBench(async (processes) => {
  const began = performance.now();
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
  const edge = await startMeasuredEdge(processes, edgeDir);
  const nginx = await startNginxProxy(processes, WRK_NAME, wrk.files, origin.port);
  const caddy = await startCaddy(processes, WRK_NAME, wrk.files, origin.port);
  await printHeader(undefined, [
    issuedNote(issued),
    SERVERS_NOTE,
    WRK_NOTE,
    "wrk, h2load, nginx, Caddy and the Node client share the machine's cores",
  ]);

  await throughput(origin, edge, nginx, caddy);
  await processes.stop(caddy.started);
  await http2Figures(processes, edge, wrk.files);
  await handshakeRates(edge, nginx, certNames, contextSample(credentials, issued.rows));
  await processes.stop(nginx.started);
  await stopEdge(processes, edge);

  const { emptyDir, fullDir } = await prepareStartStores(
    processes,
    credentials,
    origin,
    certNames,
    issued.rows.filter((row) => row.hostname !== SINGLE_NAME),
  );
  await startAndMemory(processes, emptyDir, fullDir, certNames);
  printEnd(began, 'the edge of parts 1 and 2');
});
