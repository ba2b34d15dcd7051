/**
 * HTTP loads with wrk, the load generator every HTTP figure of the benchmarks is measured with:
 * requests per second, p99 and failed requests of one load.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { exitedChildrenCpuSeconds } from './processes.js';

/** One measured load: throughput and tail latency. */
export interface Figure {
  name: string;
  requestsPerSecond: number;
  /** wrk's own p99: includes the load's first second, while the server takes its connections (below). */
  p99Ms: number;
  /** The p99 of a second run of the same load whose connections were all open before it began. */
  openedFirstP99Ms?: number;
  errors: number;
  /** CPU seconds wrk itself used (user + system), to state the load generator's share of the machine. */
  loadGeneratorCpuSeconds: number;
}

export interface Load {
  /** A Lua body for wrk (`request = function() … end`, `response = …`), for requests that vary. */
  lua?: string;
  headers?: Record<string, string>;
  seconds: number;
  connections?: number;
  /**
   * Every connection waits CONNECTIONS_GRACE_MS before its first request, so the server has taken
   * all of them before any is loaded. Why: Node accepts one new connection per turn of its event
   * loop, and a loaded turn lasts as long as the requests of every connection already taken. So
   * at a load's start the k-th connection waits for k - 1 turns, up to about a second when each
   * request costs 300 µs; wrk then "corrects" each such first request for coordinated omission,
   * adding a made-up sample for every request interval it lasted. Against a Node server costing
   * 300 µs per request, wrk reported a p99 of 602 ms where a packet capture of the same run found
   * 39 ms (and 50 of 9,508 requests over 60 ms, every one the first of its connection). With the
   * grace, wrk's p99 of that load was 37 ms. The grace delays the first request of each
   * connection only, but wrk then passes every request through a timer, which costs it CPU: so it
   * is used for latency runs and never for the req/s figures.
   */
  connectionsFirst?: boolean;
}

const CONNECTIONS_GRACE_MS = 100;
const WRK_THREADS = 2;

const toMs = (value: string, unit: string) => Number(value) * ({ us: 0.001, ms: 1, s: 1000 }[unit] ?? 1);

/**
 * A bounded load on loopback with wrk (Debian's package), the load generator the project's
 * reference figures were taken with. Every figure of a run uses the same connections and duration.
 */
export async function measure(name: string, url: string, load: Load): Promise<Figure> {
  const dir = mkdtempSync(path.join(tmpdir(), 'portico-wrk-'));
  const headerLines = Object.entries(load.headers ?? {})
    .map(([key, value]) => `wrk.headers[${JSON.stringify(key)}] = ${JSON.stringify(value)}`)
    .join('\n');
  // Count non-2xx answers so a figure of fast errors is never mistaken for a fast API.
  const script = `${headerLines}
failures = 0
local threads = {}
function setup(thread) table.insert(threads, thread); thread:set("thread_id", #threads) end
function response(status, headers, body) if status < 200 or status > 299 then failures = failures + 1 end end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("failures") end
  io.write(string.format("non2xx: %d\\n", total))
end
${load.lua ?? ''}
${
  load.connectionsFirst
    ? `local firstRequests = 0
function delay()
  firstRequests = firstRequests + 1
  if firstRequests <= ${Math.ceil((load.connections ?? 64) / WRK_THREADS)} then return ${CONNECTIONS_GRACE_MS} end
  return 0
end`
    : ''
}`;
  const scriptFile = path.join(dir, 'load.lua');
  writeFileSync(scriptFile, script);
  let stdout: string;
  const childrenCpu = exitedChildrenCpuSeconds();
  try {
    ({ stdout } = await promisify(execFile)(
      'wrk',
      [
        `-t${WRK_THREADS}`,
        `-c${load.connections ?? 64}`,
        `-d${load.seconds}s`,
        '--latency',
        '-s',
        scriptFile,
        url,
      ],
      { maxBuffer: 1 << 20 },
    ));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new Error('wrk is missing: apt-get install -y wrk');
    throw error;
  }
  // Only wrk exits while it runs: the servers measured keep running.
  const loadGeneratorCpuSeconds = exitedChildrenCpuSeconds() - childrenCpu;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? 0);
  const p99 = /99%\s+([\d.]+)(us|ms|s)/.exec(stdout);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const errors =
    Number(/non2xx: (\d+)/.exec(stdout)?.[1] ?? 0) +
    (socketErrors ? socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0);
  if (errors > 0) console.error(`${name}: ${errors} failed requests`);
  return {
    name,
    requestsPerSecond: rps,
    p99Ms: p99 ? toMs(p99[1] ?? '0', p99[2] ?? 'ms') : Number.NaN,
    errors,
    loadGeneratorCpuSeconds,
  };
}
