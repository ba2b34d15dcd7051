/**
 * npm run bench:verify — one sweep over 10,000 domains in `verifying` against the loopback DNS
 * server (in its own process): how long the sweep takes, checks per second, DNS queries per check,
 * and the worker's memory at 1,000 and at 10,000 domains. The baseline, measured in the same run,
 * is the same number of raw lookups through Node's own resolver (c-ares) at the same concurrency:
 * the most a check made of DNS lookups could do here.
 */
import { fork } from 'node:child_process';
import { Resolver } from 'node:dns/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../src/config.js';
import { createResolvers } from '../src/dns/resolvers.js';
import { createApiKey } from '../src/domain/api-keys.js';
import { AppService } from '../src/domain/apps.js';
import { systemClock } from '../src/domain/clock.js';
import { DomainService } from '../src/domain/domains.js';
import { VerificationService } from '../src/domain/verification.js';
import { createStore } from '../src/store/index.js';
import { domainCheckHandlers } from '../src/worker/jobs/domain-check.js';
import { Worker } from '../src/worker/runner.js';

const SIZES = (process.env.BENCH_DOMAINS ?? '1000,10000').split(',').map(Number);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const here = path.dirname(new URL(import.meta.url).pathname);

interface Reply {
  op: string;
  port: number;
  count: number;
}
const dnsProcess = fork(path.join(here, 'dns-server-process.ts'), [], { execArgv: ['--import', 'tsx'] });
const replies: ((reply: Reply) => void)[] = [];
dnsProcess.on('message', (reply: Reply) => replies.shift()?.(reply));
const ask = (command: object) =>
  new Promise<Reply>((resolve) => {
    replies.push(resolve);
    if (Object.keys(command).length) dnsProcess.send(command);
  });
const { port } = await ask({});
const server = `127.0.0.1:${port}`;

/** Raw lookups through c-ares at the same concurrency: the baseline. */
async function rawLookups(names: string[]): Promise<number> {
  const resolver = new Resolver({ timeout: 2000, tries: 1 });
  resolver.setServers([server]);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < names.length) {
        const name = names[next++] as string;
        await resolver.resolveTxt(name).catch(() => undefined);
      }
    }),
  );
  return names.length / ((performance.now() - started) / 1000);
}

async function sweep(count: number) {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'portico-bench-verify-'));
  const store = await createStore({ dataDir });
  const config = loadConfig({ PORTICO_DNS_SERVERS: server, PORTICO_APPS_DOMAIN: 'apps.bench.test' });
  const { orgId } = await createApiKey(store, systemClock, { orgName: 'bench', scope: 'write' });
  const app = await new AppService(store, config, systemClock).create(orgId, {
    slug: 'bench',
    title: 'bench',
  });
  const domains = new DomainService(store, config, systemClock);
  const names: string[] = [];
  const records: [string, string, string][] = [];
  for (let i = 0; i < count; i++) {
    const name = `site${i}-${count}.verify-bench.com`;
    const domain = await domains.add(orgId, app.id, { domain: name, isPrimary: false });
    await domains.requestVerification(orgId, app.id, name);
    names.push(name);
    // Half have created their records, half not yet: both paths cost what they cost in life.
    if (i % 2 === 0) {
      records.push([
        `_mixpeek-verify.${name}`,
        'TXT',
        `mixpeek-site-verification=${domain.verificationToken}`,
      ]);
      records.push([name, 'CNAME', config.cnameTarget]);
    }
  }
  await ask({ op: 'set', records });

  const baseline = await rawLookups(names.map((name) => `_mixpeek-verify.${name}`));
  await ask({ op: 'reset' });
  const verification = new VerificationService(store, createResolvers(config), config, systemClock);
  const worker = new Worker({
    store,
    handlers: domainCheckHandlers(verification),
    clock: systemClock,
    logger: pino({ level: 'silent' }),
    concurrency: CONCURRENCY,
    leaseSeconds: 300,
  });
  global.gc?.();
  const before = process.memoryUsage();
  let rssPeak = before.rss;
  let heapPeak = before.heapUsed;
  const sampler = setInterval(() => {
    const now = process.memoryUsage();
    rssPeak = Math.max(rssPeak, now.rss);
    heapPeak = Math.max(heapPeak, now.heapUsed);
  }, 50);
  const started = performance.now();
  await worker.drain();
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  const { count: queries } = await ask({ op: 'count' });
  const verified = (await store.listDomains(app.id, { limit: count, offset: 0 })).rows.filter(
    (d) => d.status === 'verified',
  ).length;
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });
  return {
    count,
    seconds,
    checksPerSecond: count / seconds,
    baseline,
    queriesPerCheck: queries / count,
    verified,
    rssGrowthMb: (rssPeak - before.rss) / 2 ** 20,
    heapGrowthMb: (heapPeak - before.heapUsed) / 2 ** 20,
  };
}

try {
  console.log(
    `\nVerification sweep, worker concurrency ${CONCURRENCY}, SQLite, loopback DNS server in its own process`,
  );
  console.log(
    '| domains | sweep s | checks/s | raw c-ares lookups/s (baseline) | checks/s ÷ lookups/s | DNS queries per check | verified | peak JS heap growth MB | peak RSS growth MB |',
  );
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const results = [];
  for (const size of SIZES) {
    const r = await sweep(size);
    results.push(r);
    console.log(
      `| ${r.count} | ${r.seconds.toFixed(2)} | ${r.checksPerSecond.toFixed(0)} | ${r.baseline.toFixed(0)} | ${(r.checksPerSecond / r.baseline).toFixed(2)} | ${r.queriesPerCheck.toFixed(2)} | ${r.verified} | ${r.heapGrowthMb.toFixed(1)} | ${r.rssGrowthMb.toFixed(1)} |`,
    );
  }
  const [small, large] = [results[0], results.at(-1)];
  if (small && large && large !== small) {
    console.log(
      `\n${large.count / small.count}× the domains: ${(large.heapGrowthMb / Math.max(small.heapGrowthMb, 1)).toFixed(2)}× the peak JS heap growth. RSS also holds SQLite's page cache (bounded at 16 MB by cache_size) and the WAL's pages.`,
    );
  }
} finally {
  dnsProcess.kill();
}
