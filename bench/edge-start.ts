/**
 * npm run bench:edge:start — figure 3 of bench:edge, alone: the edge's start time and memory with
 * BENCH_EDGE_DOMAINS (100,000) active domains in SQLite, against an empty store, on each runtime
 * measured (bench/lib/runtimes.ts); then its memory once HTTPS requests to distinct names have
 * filled its certificate cache, as the edge's defaults size it (PORTICO_EDGE_CERT_CACHE_MB unset).
 * Then 3b: the same names served by an edge started cold with its store unreachable, from the
 * snapshot of that store (src/snapshot/): time to its first 200, and its RSS.
 *
 * Set-up: the run's CA, BENCH_EDGE_CERTS (10,000) certificates issued by InternalIssuer (the names
 * the requests go to), the origin they reach, and the two stores. Environment: BENCH_EDGE_DOMAINS,
 * BENCH_EDGE_CERTS (bench/lib/edge-setup.ts), BENCH_NODE_LTS (bench/lib/runtimes.ts). Every server
 * is a child process on 127.0.0.1, ended in `finally`; temporary directories go too.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { CertificateReader } from '../src/acme/certificate-reader.js';
import { certificateCacheBytes, DEFAULT_CERT_CACHE_MB } from '../src/edge/sni-cache.js';
import { snapshotFile } from '../src/snapshot/snapshot-file.js';
import { SnapshotWriter } from '../src/snapshot/snapshot-writer.js';
import { createStore } from '../src/store/index.js';
import type { IssuedCertificateRow } from './lib/certificates.js';
import {
  APPS_DOMAIN,
  certNames as allCertNames,
  CERTS,
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
  seededDataDir,
  siteName,
} from './lib/edge-setup.js';
import { type EdgeProcess, startPorticoEdge } from './lib/portico-edge.js';
import { freePort, isMain, type Processes, rssMb, runBench } from './lib/processes.js';
import { type Server, startOrigin } from './lib/proxies.js';
import { cell, fixed, type SummaryRow, table, verdict } from './lib/report.js';
import type { Runtime } from './lib/runtimes.js';
import { median, shuffle } from './lib/stats.js';
import { requestEach } from './lib/tls-clients.js';

const DOMAINS = Math.max(Number(process.env.BENCH_EDGE_DOMAINS ?? 100_000), CERTS);
const START_ROUNDS = 5;

export interface StartStores {
  emptyDir: string;
  fullDir: string;
  /** Certificates of the default certificate cache's size, counted as the cache counts them. */
  defaultCacheHolds: number;
}

/**
 * The two stores of figure 3: DOMAINS active domains with the given certificates (those of
 * `certNames`), and an empty one with the same CA and API key.
 */
export async function prepareStartStores(
  processes: Processes,
  credentials: Credentials,
  origin: Server,
  certNames: string[],
  certificates: IssuedCertificateRow[],
): Promise<StartStores> {
  const seedStarted = performance.now();
  const fullDir = await seededDataDir(processes, credentials, 'data-full', {
    originUrl: originUrl(origin),
    domains: Array.from({ length: DOMAINS }, (_, i) => siteName(i)),
    perApp: 10,
    certificates,
  });
  const seedSeconds = (performance.now() - seedStarted) / 1000;
  const emptyDir = await seededDataDir(processes, credentials, 'data-empty', {
    originUrl: originUrl(origin),
    domains: [],
    perApp: 10,
  });
  const perCertificate = median(
    certificates.slice(0, 100).map((row) =>
      certificateCacheBytes({
        certificatePem: row.certificatePem,
        privateKeyPem: credentials.box.open(row.privateKeyEnc),
      }),
    ),
  );
  const defaultCacheHolds = Math.floor((DEFAULT_CERT_CACHE_MB * 2 ** 20) / perCertificate);
  console.log(
    `\nStore for part 3: ${DOMAINS.toLocaleString('en')} active domains on ${Math.ceil(DOMAINS / 10).toLocaleString('en')} apps (10 each, none primary, so each name serves itself), inserted in ${fixed(seedSeconds, 1)} s; ` +
      `certificates for ${certNames.length.toLocaleString('en')} of them only: the edge loads a certificate on the first handshake that names it, so the others are never read, and the requests go to names that have one. ` +
      'The empty store has the same CA and API key, so both starts do the same work but for the data. ' +
      `The edge's default certificate cache (${DEFAULT_CERT_CACHE_MB} MiB) holds ${defaultCacheHolds.toLocaleString('en')} of these certificates (each counted as ${fixed(perCertificate / 1024, 1)} KiB).`,
  );
  return { emptyDir, fullDir, defaultCacheHolds };
}

/** An edge's memory once `requests` HTTPS requests to distinct names went through it. */
interface AfterTraffic {
  rss: number;
  fileRss: number;
  ok: number;
  failed: number;
  firstError?: string;
}

async function afterTraffic(edge: EdgeProcess, certNames: string[], requests: number): Promise<AfterTraffic> {
  const names = shuffle([...certNames]).slice(0, requests);
  const result = await requestEach(edge.httpsPort, names, HANDSHAKE_CONCURRENCY);
  return {
    rss: rssMb(edge.started.pid),
    fileRss: rssMb(edge.started.pid, 'RssFile'),
    ok: result.statuses.get(200) ?? 0,
    failed: result.failed,
    firstError: result.firstError,
  };
}

/**
 * Every start's reading after its traffic, as one: the median RSS (one reading moves by several MB
 * with when the garbage collector last ran), its range, and the requests' outcomes summed.
 */
function summarizeTraffic(readings: AfterTraffic[]) {
  if (readings.length === 0) return undefined;
  const rss = readings.map((reading) => reading.rss);
  return {
    rss: median(rss),
    fileRss: median(readings.map((reading) => reading.fileRss)),
    range: `${fixed(Math.min(...rss), 0)}–${fixed(Math.max(...rss), 0)}`,
    ok: readings.reduce((sum, reading) => sum + reading.ok, 0),
    failed: readings.reduce((sum, reading) => sum + reading.failed, 0),
    firstError: readings.find((reading) => reading.firstError)?.firstError,
  };
}

interface Reading {
  startMs: number;
  rss: number;
  /** Of `rss`, what is mapped from files (the runtime's binary): shared by every process running it. */
  fileRss: number;
}

/**
 * Figure 3: START_ROUNDS starts on each store and runtime, taking turns; then, on each runtime,
 * requests to more distinct names than the default certificate cache holds. Returns the lines of
 * the run's closing table.
 */
export async function startAndMemory(
  procs: Processes,
  runtimes: Runtime[],
  stores: StartStores,
  certNames: string[],
): Promise<SummaryRow[]> {
  // A fifth more names than the cache holds (so it is full, and has evicted, when RSS is read), and
  // at least 1,000 new connections' worth of traffic.
  const requests = Math.min(certNames.length, Math.max(1_000, Math.ceil(stores.defaultCacheHolds * 1.2)));
  const readings = new Map(
    runtimes.map((runtime) => [runtime.label, { empty: [] as Reading[], full: [] as Reading[] }]),
  );
  const afterRequests = new Map(runtimes.map((runtime) => [runtime.label, [] as AfterTraffic[]]));
  for (let round = 0; round < START_ROUNDS; round++) {
    for (const runtime of runtimes) {
      for (const kind of ['empty', 'full'] as const) {
        const edge = await startPorticoEdge(procs, {
          runtime,
          dataDir: kind === 'empty' ? stores.emptyDir : stores.fullDir,
          appsDomain: APPS_DOMAIN,
        });
        readings.get(runtime.label)?.[kind].push({
          startMs: edge.startMs,
          rss: rssMb(edge.started.pid),
          fileRss: rssMb(edge.started.pid, 'RssFile'),
        });
        if (kind === 'full') {
          afterRequests.get(runtime.label)?.push(await afterTraffic(edge, certNames, requests));
        }
        await procs.stop(edge.started);
      }
    }
  }

  const rows: (string | number)[][] = [];
  const targets: (string | number)[][] = [];
  const summary = {
    start: {
      figure: `start with ${DOMAINS.toLocaleString('en')} domains, ms`,
      target: '< 2,000',
      byRuntime: new Map(),
    },
    rss: {
      figure: 'RSS, default certificate cache full, MB',
      target: '< 200',
      byRuntime: new Map(),
    },
  } satisfies Record<string, SummaryRow>;
  for (const runtime of runtimes) {
    const label = runtime.label;
    const runs = readings.get(label) ?? { empty: [], full: [] };
    const after = summarizeTraffic(afterRequests.get(label) ?? []);
    const emptyStart = median(runs.empty.map((run) => run.startMs));
    const fullStart = median(runs.full.map((run) => run.startMs));
    const emptyRss = median(runs.empty.map((run) => run.rss));
    const fullRss = median(runs.full.map((run) => run.rss));
    const fileRss = (readings: Reading[]) => fixed(median(readings.map((run) => run.fileRss)), 0);
    rows.push(
      [
        `${label}, empty store (baseline)`,
        fixed(emptyStart, 0),
        '1.00',
        runs.empty.map((run) => fixed(run.startMs, 0)).join(', '),
        fixed(emptyRss, 0),
        fileRss(runs.empty),
        '1.00',
      ],
      [
        `${label}, ${DOMAINS.toLocaleString('en')} active domains`,
        fixed(fullStart, 0),
        fixed(fullStart / emptyStart),
        runs.full.map((run) => fixed(run.startMs, 0)).join(', '),
        fixed(fullRss, 0),
        fileRss(runs.full),
        fixed(fullRss / emptyRss),
      ],
    );
    if (after) {
      rows.push([
        `${label}, … then ${requests.toLocaleString('en')} HTTPS requests to distinct served names, each start (${after.ok} × 200, ${after.failed} failed; RSS ${after.range} MB)`,
        '–',
        '–',
        '–',
        fixed(after.rss, 0),
        fixed(after.fileRss, 0),
        fixed(after.rss / emptyRss),
      ]);
      if (after.firstError) console.log(`\n${label}: first request error: ${after.firstError}`);
    }
    const peakRss = Math.max(fullRss, after?.rss ?? 0);
    targets.push(
      [
        `${label}: start with ${DOMAINS.toLocaleString('en')} domains`,
        `${fixed(fullStart, 0)} ms`,
        '< 2,000 ms',
        verdict(fullStart < 2000),
      ],
      [
        `${label}: RSS, highest reading (the default certificate cache full)`,
        `${fixed(peakRss, 0)} MB`,
        '< 200 MB',
        verdict(peakRss < 200),
      ],
    );
    summary.start.byRuntime.set(label, cell(fixed(fullStart, 0), fullStart < 2000));
    summary.rss.byRuntime.set(label, cell(fixed(peakRss, 0), peakRss < 200));
  }
  table(
    `### 3. Edge start (spawn of \`portico serve --roles edge\` → "edge listening" line, median of ${START_ROUNDS}, runtimes and stores taking turns) and RSS (VmRSS of the process), SQLite, the edge's default settings`,
    [
      'store',
      'start ms',
      '÷ empty',
      'each run, ms',
      'RSS MB',
      'of which mapped from files (the runtime binary, shared by its processes), MB',
      'RSS ÷ empty',
    ],
    rows,
    [':---'],
  );
  table('Targets', ['figure', 'value', 'target', 'verdict'], targets, [':---']);
  return Object.values(summary);
}

/** A data directory holding only the snapshot of `fullDir`'s store (no database of its own), and what building it took. */
export async function prepareSnapshotDir(
  processes: Processes,
  credentials: Credentials,
  fullDir: string,
): Promise<{ dir: string; encryptionKey: string; seconds: number; bytes: number }> {
  const dir = processes.tempDir('data-snapshot');
  const store = await createStore({ dataDir: fullDir });
  const started = performance.now();
  try {
    const writer = new SnapshotWriter({
      store,
      appsDomain: APPS_DOMAIN,
      certificates: new CertificateReader(store, credentials.box, APPS_DOMAIN),
      file: snapshotFile(dir),
      logger: pino({ level: 'silent' }),
    });
    await writer.flush();
    await writer.stop();
  } finally {
    await store.close();
  }
  return {
    dir,
    // A node on PostgreSQL shares the sealing key through the environment, not a file.
    encryptionKey: readFileSync(path.join(fullDir, 'secret.key'), 'utf8').trim(),
    seconds: (performance.now() - started) / 1000,
    // The index and its records file.
    bytes: readdirSync(dir)
      .filter((name) => name.startsWith('edge-snapshot'))
      .reduce((sum, name) => sum + statSync(path.join(dir, name)).size, 0),
  };
}

/**
 * Figure 3b: an edge started cold while its store is unreachable (DATABASE_URL names a port where
 * nothing listens), serving the 100,000 names of the full store from its snapshot: from spawn to
 * the first 200 through it, then its RSS once requests to distinct names filled its certificate
 * cache, beside the start from the store of figure 3.
 */
export async function startFromSnapshot(
  procs: Processes,
  runtimes: Runtime[],
  snapshot: Awaited<ReturnType<typeof prepareSnapshotDir>>,
  certNames: string[],
  requests: number,
): Promise<SummaryRow[]> {
  const deadPort = await freePort();
  const rows: (string | number)[][] = [];
  const targets: (string | number)[][] = [];
  const summary = {
    serving: {
      figure: `serving from a snapshot of ${DOMAINS.toLocaleString('en')} names, ms`,
      target: '< 2,000',
      byRuntime: new Map(),
    },
    rss: { figure: 'RSS serving from the snapshot, MB', target: '< 200', byRuntime: new Map() },
  } satisfies Record<string, SummaryRow>;
  for (const runtime of runtimes) {
    const servingMs: number[] = [];
    const listeningMs: number[] = [];
    const traffic: AfterTraffic[] = [];
    for (let round = 0; round < START_ROUNDS; round++) {
      const began = performance.now();
      const edge = await startPorticoEdge(procs, {
        runtime,
        dataDir: snapshot.dir,
        appsDomain: APPS_DOMAIN,
        env: {
          DATABASE_URL: `postgres://portico@127.0.0.1:${deadPort}/portico`,
          PORTICO_ENCRYPTION_KEY: snapshot.encryptionKey,
          PORTICO_TLS_ISSUER: 'none',
        },
      });
      listeningMs.push(edge.startMs);
      const first = certNames[round % certNames.length] as string;
      // Serving: the first request through the edge that is answered 200, from the snapshot.
      for (;;) {
        const result = await requestEach(edge.httpsPort, [first], 1);
        if (result.statuses.get(200) === 1) break;
        if (performance.now() - began > 30_000)
          throw new Error(`no 200 from the snapshot: ${result.firstError}`);
      }
      servingMs.push(performance.now() - began);
      traffic.push(await afterTraffic(edge, certNames, requests));
      await procs.stop(edge.started);
    }
    const after = summarizeTraffic(traffic);
    const serving = median(servingMs);
    rows.push([
      `${runtime.label}, store unreachable, snapshot of ${DOMAINS.toLocaleString('en')} names`,
      fixed(median(listeningMs), 0),
      fixed(serving, 0),
      servingMs.map((ms) => fixed(ms, 0)).join(', '),
      after ? `${fixed(after.rss, 0)} (${after.range}; ${after.ok} × 200, ${after.failed} failed)` : '–',
    ]);
    if (after?.firstError) console.log(`\n${runtime.label}: first request error: ${after.firstError}`);
    const rss = after?.rss ?? Number.NaN;
    targets.push(
      [
        `${runtime.label}: serving from the snapshot`,
        `${fixed(serving, 0)} ms`,
        '< 2,000 ms',
        verdict(serving < 2000),
      ],
      [
        `${runtime.label}: RSS serving from the snapshot`,
        `${fixed(rss, 0)} MB`,
        '< 200 MB',
        verdict(rss < 200),
      ],
    );
    summary.serving.byRuntime.set(runtime.label, cell(fixed(serving, 0), serving < 2000));
    summary.rss.byRuntime.set(runtime.label, cell(fixed(rss, 0), rss < 200));
  }
  console.log(
    `\nSnapshot for part 3b: built from the full store in ${fixed(snapshot.seconds, 1)} s, ${fixed(snapshot.bytes / 2 ** 20, 1)} MiB (the certificates of ${certNames.length.toLocaleString('en')} names, the routes of all).`,
  );
  table(
    `### 3b. Edge start with the store unreachable, from its snapshot (spawn → "edge listening", and spawn → first 200 from the snapshot, median of ${START_ROUNDS}), RSS after ${requests.toLocaleString('en')} requests to distinct names (median of the starts, and its range)`,
    ['start', 'listening ms', 'serving ms', 'each run, serving ms', 'RSS MB'],
    rows,
    [':---'],
  );
  table('Targets', ['figure', 'value', 'target', 'verdict'], targets, [':---']);
  return Object.values(summary);
}

if (isMain(import.meta.url)) {
  await runBench(async (processes) => {
    const began = performance.now();
    const prepared = runtimesOrWarn();
    const { runtimes } = prepared;
    const credentials = await makeCredentials(processes);
    const certNames = allCertNames();
    const issued = await issueTimed(credentials, certNames);
    const origin = await startOrigin(processes);
    await printHeader('start and memory', [issuedNote(issued), runtimesNote(prepared)]);
    const stores = await prepareStartStores(processes, credentials, origin, certNames, issued.rows);
    const summary = await startAndMemory(processes, runtimes, stores, certNames);
    const snapshot = await prepareSnapshotDir(processes, credentials, stores.fullDir);
    const requests = Math.min(certNames.length, Math.max(1_000, Math.ceil(stores.defaultCacheHolds * 1.2)));
    summary.push(...(await startFromSnapshot(processes, runtimes, snapshot, certNames, requests)));
    printSideBySide('### Side by side', prepared, summary);
    printEnd(began);
  });
}
