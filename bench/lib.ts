import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

/** One measured load: throughput and tail latency. */
export interface Figure {
  name: string;
  requestsPerSecond: number;
  p99Ms: number;
  errors: number;
}

/**
 * Runs a node script and resolves with it and the URL it prints: a TypeScript one through tsx, a
 * JavaScript one (`bin/portico.js`, which runs its own bundle) as it is.
 */
export async function startServer(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ url: string; child: ChildProcess }> {
  const loader = args[0]?.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const child = spawn(process.execPath, [...loader, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const match = /listening on (http:\/\/[\d.:]+)/.exec(text);
      if (match?.[1]) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before listening:\n${text}`)));
  });
  return { url, child };
}

export interface Load {
  /** A Lua body for wrk (`request = function() … end`, `response = …`), for requests that vary. */
  lua?: string;
  headers?: Record<string, string>;
  seconds: number;
  connections?: number;
}

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
${load.lua ?? ''}`;
  const scriptFile = path.join(dir, 'load.lua');
  writeFileSync(scriptFile, script);
  let stdout: string;
  try {
    ({ stdout } = await promisify(execFile)(
      'wrk',
      ['-t2', `-c${load.connections ?? 64}`, `-d${load.seconds}s`, '--latency', '-s', scriptFile, url],
      { maxBuffer: 1 << 20 },
    ));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new Error('wrk is missing: apt-get install -y wrk');
    throw error;
  }
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
  };
}

/** Prints figures with their ratios to the first one, the baseline measured in the same run. */
export function report(title: string, figures: Figure[]): void {
  const [baseline] = figures;
  if (!baseline) return;
  console.log(`\n${title}`);
  console.log('| load | req/s | p99 ms | req/s ÷ baseline | p99 ÷ baseline | failed |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const figure of figures) {
    console.log(
      `| ${figure.name} | ${figure.requestsPerSecond.toFixed(0)} | ${figure.p99Ms.toFixed(1)} | ${(figure.requestsPerSecond / baseline.requestsPerSecond).toFixed(2)} | ${(figure.p99Ms / Math.max(baseline.p99Ms, 0.001)).toFixed(2)} | ${figure.errors} |`,
    );
  }
}
