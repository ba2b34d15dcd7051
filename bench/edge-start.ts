/**
 * npm run bench:edge:start — figure 3 of bench:edge, alone: the edge's start time and memory with
 * BENCH_EDGE_DOMAINS (100,000) active domains in SQLite, against an empty store, then its memory
 * after HTTPS requests to names it serves.
 *
 * Set-up: the run's CA, BENCH_EDGE_CERTS (10,000) certificates issued by InternalIssuer (the names
 * the requests go to), the origin they reach, and the two stores. Environment: BENCH_EDGE_DOMAINS,
 * BENCH_EDGE_CERTS (bench/lib/edge-setup.ts). Every server is a child process on 127.0.0.1, ended
 * in `finally`; temporary directories go too.
 */
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
  seededDataDir,
  siteName,
} from './lib/edge-setup.js';
import { startPorticoEdge } from './lib/portico-edge.js';
import { isMain, type Processes, rssMb, runBench } from './lib/processes.js';
import { type Server, startOrigin } from './lib/proxies.js';
import { fixed, table, verdict } from './lib/report.js';
import { median, shuffle } from './lib/stats.js';
import { requestEach } from './lib/tls-clients.js';

const DOMAINS = Math.max(Number(process.env.BENCH_EDGE_DOMAINS ?? 100_000), CERTS);
const START_ROUNDS = 5;
const REQUESTS_AFTER_START = 1_000;

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
): Promise<{ emptyDir: string; fullDir: string }> {
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
  console.log(
    `\nStore for part 3: ${DOMAINS.toLocaleString('en')} active domains on ${Math.ceil(DOMAINS / 10).toLocaleString('en')} apps (10 each, none primary, so each name serves itself), inserted in ${fixed(seedSeconds, 1)} s; ` +
      `certificates for ${certNames.length.toLocaleString('en')} of them only: the edge loads a certificate on the first handshake that names it, so the others are never read, and the requests go to names that have one. ` +
      'The empty store has the same CA and API key, so both starts do the same work but for the data.',
  );
  return { emptyDir, fullDir };
}

/** Figure 3: START_ROUNDS starts on each store, alternating, then requests to the full one. */
export async function startAndMemory(
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

if (isMain(import.meta.url)) {
  await runBench(async (processes) => {
    const began = performance.now();
    const credentials = await makeCredentials(processes);
    const certNames = allCertNames();
    const issued = await issueTimed(credentials, certNames);
    const origin = await startOrigin(processes);
    await printHeader('start and memory', [issuedNote(issued)]);
    const { emptyDir, fullDir } = await prepareStartStores(
      processes,
      credentials,
      origin,
      certNames,
      issued.rows,
    );
    await startAndMemory(processes, emptyDir, fullDir, certNames);
    printEnd(began);
  });
}
