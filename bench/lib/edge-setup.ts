/**
 * What the edge benchmark's figures share: their settings, the names they serve, and the steps of
 * their set-up. Each figure's script (bench/edge-throughput.ts, edge-handshakes.ts, edge-start.ts)
 * takes only the steps its figure needs; bench/edge.ts takes them once for all three.
 *
 * Environment: BENCH_SECONDS (default 10) for each timed load; BENCH_EDGE_CERTS (10000) for the
 * certificates issued; BENCH_EDGE_CPU_PROF=<dir> to have the edge of figures 1 and 2 write a V8 CPU
 * profile there (summarize it with bench/profile-summary.ts).
 */
import { cpSync, mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import type { SecretBox } from '../../src/secrets/secret-box.js';
import {
  type CertificateFiles,
  caSignedCertificate,
  copyCredentials,
  type IssuedCertificateRow,
  issueCertificates,
  prepareCredentials,
} from './certificates.js';
import { type EdgeProcess, startPorticoEdge } from './portico-edge.js';
import { machineBusyCores, machineTicks, type Processes } from './processes.js';
import type { Server } from './proxies.js';
import { fixed, type SummaryRow, sideBySide } from './report.js';
import { prepareRuntimes, type Runtime, type Runtimes } from './runtimes.js';
import { type SeedOptions, seedStore } from './seed.js';

export const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
export const WARMUP_SECONDS = Math.min(2, SECONDS);
export const CERTS = Number(process.env.BENCH_EDGE_CERTS ?? 10_000);
export const PROFILE_DIR = process.env.BENCH_EDGE_CPU_PROF
  ? path.resolve(process.env.BENCH_EDGE_CPU_PROF)
  : undefined;
/** TLS connections in flight from the Node client (handshakes of figure 2, requests of figure 3). */
export const HANDSHAKE_CONCURRENCY = 32;

export const APPS_DOMAIN = 'apps.edge-bench.test';
/** The only name that resolves to 127.0.0.1 here, so wrk (SNI = the URL's host) can use it. */
export const WRK_NAME = 'localhost';
export const SINGLE_NAME = 'single.edge-bench.test';
export const siteName = (i: number) => `site${i}.edge-bench.test`;
/** The BENCH_EDGE_CERTS names that get a certificate each. */
export const certNames = (): string[] => Array.from({ length: CERTS }, (_, i) => siteName(i));

/** Phrases of the set-up line that several scripts print alike. */
export const SERVERS_NOTE =
  'every server is one process with one worker (nginx worker_processes 1, Caddy GOMAXPROCS=1, Portico: one Node.js process)';
export const WRK_NOTE = `the wrk target name is \`${WRK_NAME}\` (the only name resolving to 127.0.0.1 here) with a certificate from the same CA`;

export interface Credentials {
  /** Holds the CA and the sealing key that every data directory of the run copies. */
  template: string;
  box: SecretBox;
}

export async function makeCredentials(processes: Processes): Promise<Credentials> {
  const template = processes.tempDir('credentials');
  return { template, box: await prepareCredentials(template) };
}

/** The wrk target's certificate: files for nginx and Caddy, and a row (key sealed) for Portico's store. */
export function wrkCertificate({ template, box }: Credentials): {
  files: CertificateFiles;
  row: IssuedCertificateRow;
} {
  const files = caSignedCertificate(template, template, WRK_NAME);
  return {
    files,
    row: {
      hostname: WRK_NAME,
      certificatePem: files.certificatePem,
      privateKeyEnc: box.seal(files.privateKeyPem),
      notBefore: files.notBefore.toISOString(),
      notAfter: files.notAfter.toISOString(),
    },
  };
}

export interface Issued {
  rows: IssuedCertificateRow[];
  seconds: number;
}

/** One certificate per name from the run's CA (InternalIssuer), and how long issuing them took. */
export async function issueTimed(credentials: Credentials, names: string[]): Promise<Issued> {
  const started = performance.now();
  const rows = await issueCertificates(credentials.template, names);
  return { rows, seconds: (performance.now() - started) / 1000 };
}

export const issuedNote = (issued: Issued) =>
  `${issued.rows.length.toLocaleString('en')} certificates issued by InternalIssuer in ${fixed(issued.seconds, 1)} s`;

export const originUrl = (origin: Server) => `http://127.0.0.1:${origin.port}`;

/** A new data directory with the run's credentials and a store seeded as `seed` says. */
export async function seededDataDir(
  processes: Processes,
  credentials: Credentials,
  prefix: string,
  seed: Omit<SeedOptions, 'dataDir'>,
): Promise<string> {
  const dataDir = processes.tempDir(prefix);
  copyCredentials(credentials.template, dataDir);
  await seedStore({ ...seed, dataDir });
  return dataDir;
}

/**
 * The runtimes of the run (bench/lib/runtimes.ts), said loudly when one of them is missing: the run
 * goes on with the others, and its figures are then not side by side.
 */
export function runtimesOrWarn(): Runtimes {
  const prepared = prepareRuntimes();
  warnMissing(prepared);
  return prepared;
}

function warnMissing({ runtimes, missing }: Runtimes): void {
  for (const reason of missing) {
    console.log(
      `\n**WARNING: ${reason}. This run measures ${runtimes.map((r) => r.label).join(' and ')} only.**`,
    );
  }
}

/** What `printHeader` says about the runtimes: each one's Node and OpenSSL, and whether one is missing. */
export function runtimesNote({ runtimes, missing }: Runtimes): string {
  const each = runtimes.map((r) => `${r.label} (OpenSSL ${r.openssl})`).join(' and ');
  return missing.length === 0
    ? `Portico runs on ${each}, side by side in this run`
    : `Portico runs on ${each} **only** (see the warning)`;
}

/** The run's closing table, a column per runtime, and the warning again if a runtime is missing. */
export function printSideBySide(title: string, prepared: Runtimes, rows: SummaryRow[]): void {
  sideBySide(
    title,
    prepared.runtimes.map((runtime) => runtime.label),
    rows,
  );
  warnMissing(prepared);
}

/**
 * The edges of figures 1 and 2: one per runtime, each on its own copy of `dataDir` (so neither
 * reads a store the other has open), writing a CPU profile into BENCH_EDGE_CPU_PROF when it is set.
 * `env` adds settings of the edge's own.
 */
export async function startMeasuredEdges(
  processes: Processes,
  runtimes: Runtime[],
  dataDir: string,
  env: Record<string, string> = {},
): Promise<EdgeProcess[]> {
  if (PROFILE_DIR) mkdirSync(PROFILE_DIR, { recursive: true });
  const edges: EdgeProcess[] = [];
  for (const [i, runtime] of runtimes.entries()) {
    let dir = dataDir;
    if (i > 0) {
      dir = processes.tempDir('data-copy');
      cpSync(dataDir, dir, { recursive: true });
    }
    edges.push(
      await startPorticoEdge(processes, {
        runtime,
        dataDir: dir,
        appsDomain: APPS_DOMAIN,
        cpuProfileDir: PROFILE_DIR,
        env,
      }),
    );
  }
  return edges;
}

/**
 * Prints the run's heading, then what the machine was busy with before any load (two seconds of
 * /proc/stat, with every server of the run already started), then `setup` as one sentence.
 */
export async function printHeader(figure: string | undefined, setup: string[]): Promise<void> {
  const idle = machineTicks();
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const background = machineBusyCores(idle, 2);
  console.log(
    `## Portico edge benchmark${figure ? `: ${figure}` : ''} (${new Date().toISOString()}, Node ${process.version}, ${SECONDS} s per load)`,
  );
  console.log(
    `\nCPU busy on this machine before any load (other processes): ${fixed(background)} of ${availableParallelism()} cores` +
      (background > 0.2
        ? ' — **the machine is not idle: absolute figures and ratios are noisier than usual**'
        : ''),
  );
  console.log(`\nSet-up: ${setup.join('; ')}.`);
}

/** Stops the measured edges (giving them time to write their profiles) and prints what they logged, if anything. */
export async function stopEdges(processes: Processes, edges: EdgeProcess[]): Promise<void> {
  for (const edge of edges) await stopEdge(processes, edge);
}

async function stopEdge(processes: Processes, edge: EdgeProcess): Promise<void> {
  await processes.stop(edge.started, PROFILE_DIR ? 30_000 : 5_000);
  const edgeLog = edge.started
    .output()
    .split('\n')
    // The start-up line is shown at any level, as text or as a JSON record (PORTICO_LOG_FORMAT).
    .filter((line) => line.trim() !== '' && !line.includes('Portico edge listening'))
    .join('\n');
  if (edgeLog)
    console.log(
      `\nThe edge on ${edge.runtime.label} logged (warn and above):\n\n    ${edgeLog.split('\n').slice(0, 5).join('\n    ')}`,
    );
}

/** The last lines of a run: where the CPU profiles of `profiled` went (if it has them), and how long the run took. */
export function printEnd(began: number, profiled?: string): void {
  if (PROFILE_DIR && profiled) console.log(`\nCPU profiles of ${profiled}: ${PROFILE_DIR}`);
  console.log(`\nWhole benchmark: ${fixed((performance.now() - began) / 1000, 0)} s`);
}
