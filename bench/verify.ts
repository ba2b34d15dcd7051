/**
 * npm run bench:verify — one sweep over 10,000 domains in `verifying` against the loopback DNS
 * server (in its own process): how long the sweep takes, checks per second, DNS queries per check,
 * and the worker's memory at 1,000 and at 10,000 domains. The baseline, measured in the same run,
 * is the same number of raw lookups through Node's own resolver (c-ares) at the same concurrency:
 * the most a check made of DNS lookups could do here.
 *
 * Then fair shares: organization B's time from asking to verify to `verified` while organization
 * A's backlog fills the queue (100 webhook deliveries to a receiver that never answers; 600
 * domains whose DNS never answers), against B's time alone, with the shipped worker settings.
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
import { createServices } from '../src/services.js';
import { createStore } from '../src/store/index.js';
import { domainCheckHandlers } from '../src/worker/jobs/domain-check.js';
import { Worker } from '../src/worker/runner.js';
import { startWebhookReceiver } from '../test/helpers/webhook-receiver.js';

const SIZES = (process.env.BENCH_DOMAINS ?? '1000,10000').split(',').map(Number);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const here = path.dirname(new URL(import.meta.url).pathname);

interface Reply {
  op: string;
  port: number;
  count: number;
}
const FAIR_WEBHOOKS = 100;
const FAIR_SLOW_DOMAINS = 600;
/** B's verifications per case; the median is reported. */
const FAIR_SAMPLES = 5;

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

const until = async (condition: () => boolean | Promise<boolean>) => {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 5));
};

/**
 * Seconds from B's request to verify until its domain is `verified` by the worker (the median of
 * FAIR_SAMPLES), behind A's `backlog` already running. Each case has a store and names of its own.
 */
async function timeToVerified(backlog: 'none' | 'webhooks' | 'slow-dns'): Promise<number> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'portico-bench-fair-'));
  const store = await createStore({ dataDir });
  const config = loadConfig({
    PORTICO_DATA_DIR: dataDir,
    PORTICO_DNS_SERVERS: server,
    PORTICO_APPS_DOMAIN: 'apps.bench.test',
    PORTICO_ALLOW_PRIVATE_ORIGINS: '1',
    PORTICO_TLS_ISSUER: 'none',
  });
  const logger = pino({ level: 'silent' });
  const services = await createServices({ config, store, clock: systemClock, logger, issuer: null });
  const apps = new AppService(store, config, systemClock);
  const domains = new DomainService(store, config, systemClock);
  const tenant = async (name: string) => {
    const { orgId } = await createApiKey(store, systemClock, { orgName: name, scope: 'write' });
    return { orgId, app: await apps.create(orgId, { slug: name, title: name }) };
  };
  const run = `${backlog}-${Date.now()}`;
  const receiver = await startWebhookReceiver({ answer: false });
  const a = await tenant('busy');
  if (backlog === 'webhooks') {
    const domain = await domains.add(a.orgId, a.app.id, { domain: `busy.${run}.com`, isPrimary: false });
    await services.webhooks.create(a.orgId, { url: receiver.url });
    for (let i = 0; i < FAIR_WEBHOOKS; i++) {
      await store.transaction((tx) =>
        services.webhooks.record(tx, 'domain.verified', domain, systemClock.now()),
      );
    }
  }
  if (backlog === 'slow-dns') {
    const names = Array.from({ length: FAIR_SLOW_DOMAINS }, (_, i) => `slow${i}.${run}.com`);
    await ask({
      op: 'fault',
      fault: 'silence',
      names: names.flatMap((name) => [name, `_mixpeek-verify.${name}`]),
    });
    for (const name of names) {
      await domains.add(a.orgId, a.app.id, { domain: name, isPrimary: false });
      await domains.requestVerification(a.orgId, a.app.id, name);
    }
  }
  await ask({ op: 'reset' });
  const worker = new Worker({
    store,
    handlers: services.handlers,
    clock: systemClock,
    logger,
    concurrency: config.workerConcurrency,
    orgConcurrency: config.workerOrgConcurrency,
    leaseSeconds: config.jobLeaseSeconds,
    // Polling often, so that the next poll does not blur the comparison.
    pollIntervalMs: 20,
  });
  worker.start();
  // A's jobs have taken the slots they may.
  if (backlog === 'webhooks') await until(() => receiver.received() >= config.workerOrgConcurrency);
  if (backlog === 'slow-dns')
    await until(async () => (await ask({ op: 'count' })).count >= config.workerOrgConcurrency);

  // B asks to verify a few domains at once: the median of their times, so that one slow moment
  // does not decide the ratio.
  const b = await tenant('quiet');
  const names = Array.from({ length: FAIR_SAMPLES }, (_, i) => `quiet${i}.${run}.com`);
  const added = [];
  for (const name of names)
    added.push(await domains.add(b.orgId, b.app.id, { domain: name, isPrimary: false }));
  await ask({
    op: 'set',
    records: added.flatMap((domain) => [
      [`_mixpeek-verify.${domain.name}`, 'TXT', `mixpeek-site-verification=${domain.verificationToken}`],
      [domain.name, 'CNAME', config.cnameTarget],
    ]) as [string, 'TXT' | 'CNAME', string][],
  });
  const times = await Promise.all(
    added.map(async (domain) => {
      const started = performance.now();
      await domains.requestVerification(b.orgId, b.app.id, domain.name);
      await until(async () => (await store.findDomainById(domain.id))?.status === 'verified');
      return (performance.now() - started) / 1000;
    }),
  );
  await worker.stop(0);
  await receiver.close();
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });
  return times.sort((x, y) => x - y)[Math.floor(times.length / 2)] as number;
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

  const defaults = loadConfig({ PORTICO_DNS_SERVERS: server });
  console.log(
    `\nFair shares: organization B's verify, behind organization A's backlog (worker concurrency ${defaults.workerConcurrency}, at most ${defaults.workerOrgConcurrency} of one organization)`,
  );
  console.log(`| A's backlog | B's time to verified, s (median of ${FAIR_SAMPLES}) | ÷ B alone |`);
  console.log('|---|---:|---:|');
  // A first run warms up the code paths (JIT, prepared statements), which would flatter the cases after it.
  await timeToVerified('none');
  const alone = await timeToVerified('none');
  console.log(`| none | ${alone.toFixed(3)} | 1.00 |`);
  for (const [backlog, label] of [
    ['webhooks', `${FAIR_WEBHOOKS} webhook deliveries to a receiver that never answers`],
    ['slow-dns', `${FAIR_SLOW_DOMAINS} domains whose DNS never answers`],
  ] as const) {
    const seconds = await timeToVerified(backlog);
    console.log(`| ${label} | ${seconds.toFixed(3)} | ${(seconds / alone).toFixed(2)} |`);
  }
} finally {
  dnsProcess.kill();
}
