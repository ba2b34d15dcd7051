/**
 * HTTP loads with h2load (Debian's nghttp2-client), the load generator of the HTTP/2 figures: the
 * same client speaks h2 and, with `--h1`, HTTP/1.1, so the two protocols are compared with one
 * client's costs and one way of counting. wrk (bench/lib/wrk.ts) speaks HTTP/1.1 only.
 *
 * Each load is timed (`-D`) after a warm-up (`--warm-up-time`) on the same connections: every
 * connection is open, and its TLS handshake done, before the measured part starts, and h2load
 * counts only what completes in it. h2load prints no percentiles, so the p99 comes from its
 * per-request log (`--log-file`, measured part only). The CPU a server used is read from /proc when
 * h2load says the measured part began and when it says it ended (it flushes each line).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cpuSeconds, machineBusyCores, machineTicks } from './processes.js';
import type { Figure } from './wrk.js';

export type Protocol = 'h2' | 'http/1.1';

export interface H2Load {
  protocol: Protocol;
  /** `-c`: connections, all opened during the warm-up. */
  connections: number;
  /** `-m`: streams in flight per connection (h2); must be 1 for HTTP/1.1, which would pipeline. */
  streams: number;
  /** `-D`: the measured part. */
  seconds: number;
  /** `--warm-up-time`: load before the measured part, on the same connections. */
  warmUpSeconds: number;
}

export interface H2Figure extends Figure {
  /** CPU seconds the server's process tree used per request during the measured part. */
  serverCpuPerRequest: number;
  /** Cores h2load itself kept busy during the measured part (it runs one thread: 1.0 is its ceiling). */
  clientCores: number;
  /** Cores the whole machine kept busy during the measured part. */
  machineCores: number;
}

const WARM_UP_OVER = /Warm-up phase is over/;
const MAIN_OVER = /Main benchmark duration is over/;

/** The p-th percentile (0–100) of sorted values, nearest rank. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/**
 * One load on `url` (https, a name resolving to 127.0.0.1); `serverPid` is the process whose CPU
 * is measured. Throws when h2load did not get the protocol asked for, so a figure never silently
 * measures the other one.
 */
export async function h2load(name: string, url: string, load: H2Load, serverPid: number): Promise<H2Figure> {
  if (load.protocol === 'http/1.1' && load.streams !== 1)
    throw new Error('h2load: more than one request in flight per HTTP/1.1 connection is pipelining');
  const dir = mkdtempSync(path.join(tmpdir(), 'portico-h2load-'));
  const logFile = path.join(dir, 'requests.tsv');
  const args = [
    ...(load.protocol === 'http/1.1' ? ['--h1'] : []),
    '-t1',
    `-c${load.connections}`,
    `-m${load.streams}`,
    `-D${load.seconds}`,
    `--warm-up-time=${load.warmUpSeconds}`,
    `--log-file=${logFile}`,
    url,
  ];
  try {
    const child = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const clientPid = child.pid ?? -1;
    const sample = () => ({
      server: cpuSeconds(serverPid),
      client: cpuSeconds(clientPid),
      machine: machineTicks(),
      at: performance.now(),
    });
    let began: ReturnType<typeof sample> | undefined;
    let measured: { server: number; client: number; machine: number; seconds: number } | undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      const before = stdout;
      stdout += chunk.toString();
      if (!WARM_UP_OVER.test(before) && WARM_UP_OVER.test(stdout)) began = sample();
      if (began && !MAIN_OVER.test(before) && MAIN_OVER.test(stdout)) {
        const seconds = (performance.now() - began.at) / 1000;
        measured = {
          server: cpuSeconds(serverPid) - began.server,
          client: cpuSeconds(clientPid) - began.client,
          machine: machineBusyCores(began.machine, seconds),
          seconds,
        };
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          error.code === 'ENOENT' ? new Error('h2load is missing: apt-get install -y nghttp2-client') : error,
        ),
      );
      child.once('exit', resolve);
    });
    if (code !== 0) throw new Error(`h2load exited with ${code}: ${stderr || stdout}`);
    const negotiated = /Application protocol: (\S+)/.exec(stdout)?.[1];
    if (negotiated !== load.protocol)
      throw new Error(`${name}: h2load got ${negotiated ?? 'no protocol'}, not ${load.protocol}:\n${stdout}`);

    const rps = Number(/finished in [^,]+, ([\d.]+) req\/s/.exec(stdout)?.[1] ?? 0);
    const counts =
      /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
        stdout,
      );
    const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout);
    const done = Number(counts?.[2] ?? 0);
    const errors =
      Number(counts?.[4] ?? 0) +
      Number(counts?.[6] ?? 0) +
      Number(status?.[2] ?? 0) +
      Number(status?.[3] ?? 0) +
      Number(status?.[4] ?? 0);
    if (errors > 0) console.error(`${name}: ${errors} failed requests`);

    const durations = readFileSync(logFile, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => Number(line.split('\t')[2]))
      .sort((a, b) => a - b);
    return {
      name,
      requestsPerSecond: rps,
      p99Ms: percentile(durations, 99) / 1000,
      errors,
      serverCpuPerRequest: measured ? measured.server / Math.max(done, 1) : Number.NaN,
      clientCores: measured ? measured.client / measured.seconds : Number.NaN,
      loadGeneratorCpuSeconds: measured ? measured.client : Number.NaN,
      machineCores: measured?.machine ?? Number.NaN,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
