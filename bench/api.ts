/**
 * npm run bench:api — the API's speed as ratios to Fastify's hello-world, all measured in this run
 * on this machine: Portico on SQLite (its embedded default) answering add-domain with unique names
 * and the list of an app's domains. The load generator shares the machine's cores with the server,
 * as the baseline's does.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cpuSeconds, startServer } from './lib/processes.js';
import { ratio, report, verdict } from './lib/report.js';
import { type Figure, measure } from './lib/wrk.js';

const duration = Number(process.env.BENCH_SECONDS ?? 10);
/**
 * Each load first runs unmeasured for this long, as in bench:edge: the first second of a process
 * under load is JIT warm-up and lazily built code, and at 64 connections its slow requests alone
 * would be the p99 of a 10-second run.
 */
const warmupSeconds = Math.min(2, duration);
const dataDir = mkdtempSync(path.join(tmpdir(), 'portico-bench-'));
const key = 'bench-key-0123456789abcdefghijklmnop';
const here = path.dirname(new URL(import.meta.url).pathname);

const referenceDir = path.join(dataDir, 'reference');
mkdirSync(referenceDir);
const hello = await startServer([path.join(here, 'hello-server.ts')], { BENCH_SQLITE_DIR: referenceDir });
const portico = await startServer([path.join(here, '../bin/portico.js'), 'serve'], {
  PORTICO_DATA_DIR: dataDir,
  PORTICO_API_PORT: '0',
  PORTICO_ROLES: 'api',
  PORTICO_BOOTSTRAP_KEY: key,
  // The load is one key at full speed: measured, not throttled.
  PORTICO_RATE_LIMIT_PER_MINUTE: '0',
  PORTICO_MAX_DOMAINS_PER_ORG: '100000000',
  PORTICO_LOG_LEVEL: 'warn',
  DATABASE_URL: '',
});

try {
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  const createApp = async (slug: string) => {
    const response = await fetch(`${portico.url}/v1/apps`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ slug, meta: { title: slug } }),
    });
    return (await response.json()).app_id as string;
  };
  const writeApp = await createApp('bench-writes');
  const readApp = await createApp('bench-reads');
  for (let i = 0; i < 10; i++) {
    await fetch(`${portico.url}/v1/apps/${readApp}/domains`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ domain: `shop${i}.reads.example.com` }),
    });
  }

  // Every load is warmed up first. `{run}` in its Lua becomes the run's own mark, so names added
  // while warming up are not added again (as conflicts) by the measured run. Each figure also keeps
  // its server's CPU time per request (user + system, /proc), which moves less than req/s when
  // other processes take the machine's CPU.
  const cpuPerRequest = new Map<Figure, number>();
  const warmedUp = async (name: string, url: string, load: Parameters<typeof measure>[2]) => {
    const mark = (run: string) => ({ ...load, lua: load.lua?.replaceAll('{run}', run) });
    await measure(`${name} (warm-up)`, url, { ...mark('w'), seconds: warmupSeconds });
    const server = (url.startsWith(hello.url) ? hello.child.pid : portico.child.pid) ?? 0;
    const before = cpuSeconds(server);
    const figure = await measure(name, url, mark('m'));
    const requests = figure.requestsPerSecond * load.seconds;
    cpuPerRequest.set(figure, requests > 0 ? ((cpuSeconds(server) - before) * 1e6) / requests : Number.NaN);
    // The same load again for its latency alone, with every connection open before it starts (see
    // Load.connectionsFirst): the tail that requests meet under the load, not the server's accepts.
    const latency = await measure(`${name} (latency)`, url, { ...mark('l'), connectionsFirst: true });
    figure.openedFirstP99Ms = latency.p99Ms;
    figure.errors += latency.errors;
    return figure;
  };
  const figures = [await warmedUp('Fastify hello-world (baseline)', `${hello.url}/`, { seconds: duration })];
  // Each wrk thread numbers its own requests; the thread's id keeps names unique across threads.
  const uniqueDomains = `
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", nil, nil, '{"domain":"d' .. counter .. '-t' .. thread_id .. '-{run}.bench.example.com"}')
end`;
  const post = (name: string, url: string, headers: Record<string, string>) =>
    warmedUp(name, url, { seconds: duration, headers, lua: uniqueDomains });
  const json = { 'content-type': 'application/json' };
  const ceilingFigure = await post(
    'Fastify POST, body and answer of add-domain, no Portico (ceiling)',
    `${hello.url}/echo`,
    json,
  );
  figures.push(ceilingFigure);
  // The reference ("a plain insert-per-request reaches about 0.29"), and the same route
  // with batched commits and checkpoints off the request path: bench/lib/insert-reference.ts.
  figures.push(
    await post(
      'Fastify POST + 1 INSERT per request, autocommit (no Portico)',
      `${hello.url}/insert/plain`,
      json,
    ),
  );
  const batchedFigure = await post(
    'Fastify POST + 1 INSERT, batched commits, checkpoints off-thread (no Portico)',
    `${hello.url}/insert/batched`,
    json,
  );
  figures.push(batchedFigure);
  const addFigure = await post(
    'POST /v1/apps/{id}/domains (unique names)',
    `${portico.url}/v1/apps/${writeApp}/domains`,
    headers,
  );
  figures.push(addFigure);
  figures.push(
    await warmedUp('GET /v1/apps/{id}/domains (10 domains)', `${portico.url}/v1/apps/${readApp}/domains`, {
      seconds: duration,
      headers,
    }),
  );
  report(
    `API throughput, ${duration} s each after ${warmupSeconds} s of warm-up, 64 connections, wrk, SQLite (ratios to hello-world)`,
    figures,
  );

  // What p99 does a route get here from its CPU cost alone? Hello-world made to spend, per request,
  // the CPU that add-domain cost the server above hello-world's own: same load, same Fastify, no I/O.
  const [helloFigure] = figures;
  if (!helloFigure) throw new Error('the baseline was not measured');
  const helloCpu = cpuPerRequest.get(helloFigure) ?? Number.NaN;
  const burn = Math.max(0, (cpuPerRequest.get(addFigure) ?? Number.NaN) - helloCpu);
  const sameCost = Number.isFinite(burn)
    ? await warmedUp(
        `Fastify hello-world spending ${burn.toFixed(0)} µs more CPU per request (no I/O)`,
        `${hello.url}/burn/${burn.toFixed(0)}`,
        { seconds: duration },
      )
    : undefined;
  const throughputRatio = (figure: Figure) => ratio(figure.requestsPerSecond, helloFigure.requestsPerSecond);
  const p99Ratio = (figure: Figure) => ratio(figure.p99Ms, helloFigure.p99Ms);
  const openedFirstP99Ratio = (figure: Figure) =>
    ratio(figure.openedFirstP99Ms, helloFigure.openedFirstP99Ms);
  console.log('\nServer CPU per request (user + system, all threads), and the same-cost reference');
  console.log(
    '| load | server CPU µs per request | ÷ hello-world | req/s ÷ hello-world | p99 ÷ hello-world | p99 ÷ hello-world, connections opened first |',
  );
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const figure of sameCost ? [...figures, sameCost] : figures) {
    const cpu = cpuPerRequest.get(figure) ?? Number.NaN;
    console.log(
      `| ${figure.name} | ${cpu.toFixed(0)} | ${(cpu / helloCpu).toFixed(2)} | ${throughputRatio(figure)} | ${p99Ratio(figure)} | ${openedFirstP99Ratio(figure)} |`,
    );
  }
  if (sameCost)
    console.log(
      `\nA route costing add-domain's CPU and doing nothing else gets ${throughputRatio(sameCost)}× hello-world's req/s and ${openedFirstP99Ratio(sameCost)}× its p99 here (connections opened first); ` +
        `add-domain gets ${throughputRatio(addFigure)}× and ${openedFirstP99Ratio(addFigure)}×.`,
    );
  const addRatio = addFigure.requestsPerSecond / helloFigure.requestsPerSecond;
  const addTail = (addFigure.openedFirstP99Ms ?? Number.NaN) / (helloFigure.openedFirstP99Ms ?? Number.NaN);
  console.log('\nTargets of add-domain');
  console.log('| figure | value | target | verdict |');
  console.log('|---|---:|---:|---:|');
  console.log(`| req/s ÷ hello-world | ${addRatio.toFixed(2)} | ≥ 0.50 | ${verdict(addRatio >= 0.5)} |`);
  console.log(
    `| p99 ÷ hello-world's, connections opened first | ${addTail.toFixed(2)} | ≤ 3.00 | ${verdict(addTail <= 3)} |`,
  );
  console.log(
    `| p99 ÷ hello-world's as wrk reports it from a cold start (connection accepts included) | ${p99Ratio(addFigure)} | – | – |`,
  );
  // The target assumes a plain insert-per-request reaches about 0.29× hello-world; where it
  // does not, these say how add-domain stands against the bare routes measured beside it.
  console.log(
    `| req/s ÷ the bare POST + 1 INSERT route with batched commits (same run) | ${ratio(addFigure.requestsPerSecond, batchedFigure.requestsPerSecond)} | – | – |`,
  );
  console.log(
    `| req/s ÷ the bare POST route, no store (same run) | ${ratio(addFigure.requestsPerSecond, ceilingFigure.requestsPerSecond)} | – | – |`,
  );
  const stored = await fetch(`${portico.url}/v1/apps/${writeApp}/domains?limit=1`, { headers }).then((r) =>
    r.json(),
  );
  console.log(`\ndomains stored by the add-domain load: ${stored.pagination.total}`);
} finally {
  hello.child.kill();
  portico.child.kill();
  rmSync(dataDir, { recursive: true, force: true });
}
