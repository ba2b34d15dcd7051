/**
 * npm run bench:api — the API's speed as ratios to Fastify's hello-world, all measured in this run
 * on this machine: Portico on SQLite (its embedded default) answering add-domain with unique names
 * and the list of an app's domains. The load generator shares the machine's cores with the server,
 * as the baseline's does.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { measure, report, startServer } from './lib.js';

const duration = Number(process.env.BENCH_SECONDS ?? 10);
const dataDir = mkdtempSync(path.join(tmpdir(), 'portico-bench-'));
const key = 'bench-key-0123456789abcdefghijklmnop';
const here = path.dirname(new URL(import.meta.url).pathname);

const hello = await startServer([path.join(here, 'hello-server.ts')]);
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

  const figures = [await measure('Fastify hello-world (baseline)', `${hello.url}/`, { seconds: duration })];
  // Each wrk thread numbers its own requests; the thread's id keeps names unique across threads.
  const uniqueDomains = `
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", nil, nil, '{"domain":"d' .. counter .. '-t' .. thread_id .. '.bench.example.com"}')
end`;
  figures.push(
    await measure('Fastify POST, body and answer of add-domain, no Portico (ceiling)', `${hello.url}/echo`, {
      seconds: duration,
      headers: { 'content-type': 'application/json' },
      lua: uniqueDomains,
    }),
  );
  figures.push(
    await measure('POST /v1/apps/{id}/domains (unique names)', `${portico.url}/v1/apps/${writeApp}/domains`, {
      seconds: duration,
      headers,
      lua: uniqueDomains,
    }),
  );
  figures.push(
    await measure('GET /v1/apps/{id}/domains (10 domains)', `${portico.url}/v1/apps/${readApp}/domains`, {
      seconds: duration,
      headers,
    }),
  );
  report(`API throughput, ${duration} s each, 64 connections, wrk, SQLite (ratios to hello-world)`, figures);
  const stored = await fetch(`${portico.url}/v1/apps/${writeApp}/domains?limit=1`, { headers }).then((r) =>
    r.json(),
  );
  console.log(`\ndomains stored by the add-domain load: ${stored.pagination.total}`);
} finally {
  hello.child.kill();
  portico.child.kill();
  rmSync(dataDir, { recursive: true, force: true });
}
