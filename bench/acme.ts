/**
 * npm run bench:acme — 200 verified domains issued against Pebble (Debian's package) by 2 workers:
 * certificates per second, orders per certificate (1.00 means no order was placed twice), and the
 * time from `verified` to `active` (median, p99). The baseline, measured in the same run against
 * the same Pebble, is the bare ACME issuer ordering certificates directly at the same concurrency,
 * with no store, queue or worker around it.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { AcmeIssuer } from '../src/acme/acme-issuer.js';
import { buildApi } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { systemClock } from '../src/domain/clock.js';
import { createServices } from '../src/services.js';
import { createStore } from '../src/store/index.js';
import { Worker } from '../src/worker/runner.js';
import { createTestApp, wrapApi } from '../test/helpers/api.js';
import { MemoryChallengeStore, startHttp01Responder } from '../test/helpers/http01-responder.js';
import { startPebble } from '../test/helpers/pebble.js';

const DOMAINS = Number(process.env.BENCH_DOMAINS ?? 200);
const WORKERS = 2;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const here = path.dirname(new URL(import.meta.url).pathname);

const dnsProcess = fork(path.join(here, 'dns-server-process.ts'), [], { execArgv: ['--import', 'tsx'] });
const replies: ((reply: { port: number }) => void)[] = [];
dnsProcess.on('message', (reply: { port: number }) => replies.shift()?.(reply));
const ask = (command?: object) =>
  new Promise<{ port: number }>((resolve) => {
    replies.push(resolve);
    if (command) dnsProcess.send(command);
  });
const dnsAddress = `127.0.0.1:${(await ask()).port}`;
const dataDir = mkdtempSync(path.join(tmpdir(), 'portico-bench-acme-'));
const store = await createStore({ dataDir });
const memory = new MemoryChallengeStore();
// One responder answers both runs: from memory for the baseline, from the store for Portico.
const responder = await startHttp01Responder({
  get: async (token) => memory.get(token) ?? (await store.findChallenge(token)),
});
const pebble = await startPebble({ dnsServer: dnsAddress, httpPort: responder.port, nonceRejectPercent: 0 });
const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((values.length * p) / 100))] ??
  Number.NaN;

try {
  const config = loadConfig({
    PORTICO_DATA_DIR: dataDir,
    PORTICO_APPS_DOMAIN: 'apps.bench.test',
    PORTICO_DNS_SERVERS: dnsAddress,
    PORTICO_TLS_ISSUER: 'acme',
    PORTICO_ACME_DIRECTORY: pebble.directoryUrl,
    PORTICO_ACME_CA_FILE: pebble.caFile,
    PORTICO_ISSUANCE_RATE_PER_HOUR: '100000',
  });
  await ask({ op: 'set', records: [[config.cnameTarget, 'A', '127.0.0.1']] });

  // Baseline: the issuer alone.
  const baselineCount = Math.min(DOMAINS, 100);
  const bare = new AcmeIssuer({
    directoryUrl: pebble.directoryUrl,
    caFile: pebble.caFile,
    accountKeys: { get: async () => undefined, putIfAbsent: async (pem) => pem },
    challenges: memory,
    backoffMinMs: 200,
  });
  const baselineNames = Array.from({ length: baselineCount }, (_, i) => `base${i}.acme-bench.com`);
  await ask({ op: 'set', records: baselineNames.map((name) => [name, 'CNAME', config.cnameTarget]) });
  let next = 0;
  const baselineStarted = performance.now();
  await Promise.all(
    Array.from({ length: WORKERS * CONCURRENCY }, async () => {
      while (next < baselineNames.length) await bare.issue([baselineNames[next++] as string]);
    }),
  );
  const baselineRate = baselineCount / ((performance.now() - baselineStarted) / 1000);

  // Portico: verified domains, then the workers do the rest.
  const logger = pino({ level: 'silent' });
  const services = await createServices({ config, store, clock: systemClock, logger });
  const api = wrapApi(
    await buildApi({ config, store, clock: systemClock, services }),
    config,
    store,
    systemClock,
  );
  const key = await api.keyFor('bench');
  const appId = await createTestApp(api, key, 'acme-bench');
  const names: string[] = [];
  for (let i = 0; i < DOMAINS; i++) {
    const name = `site${i}.acme-bench.com`;
    const added = (await api.call(key, 'POST', `/v1/apps/${appId}/domains`, { domain: name })).json();
    await ask({
      op: 'set',
      records: [
        [`_mixpeek-verify.${name}`, 'TXT', `mixpeek-site-verification=${added.verification_token}`],
        [name, 'CNAME', config.cnameTarget],
      ],
    });
    names.push(name);
  }
  for (const name of names) await api.call(key, 'POST', `/v1/apps/${appId}/domains/${name}/verify`);
  const workers = Array.from(
    { length: WORKERS },
    () =>
      new Worker({
        store,
        handlers: services.handlers,
        clock: systemClock,
        logger,
        concurrency: CONCURRENCY,
        leaseSeconds: 600,
        pollIntervalMs: 100,
      }),
  );
  const started = performance.now();
  for (const worker of workers) worker.start();
  const active = async () =>
    (await store.listDomains(appId, { limit: DOMAINS, offset: 0 })).rows.filter((d) => d.status === 'active');
  while ((await active()).length < DOMAINS) await new Promise((resolve) => setTimeout(resolve, 100));
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(workers.map((worker) => worker.stop()));

  const domains = await active();
  const certificates = await store.findCertificatesByDomainIds(domains.map((d) => d.id));
  const latencies = domains.map((domain) => {
    const issued = certificates.find((c) => c.domainId === domain.id)?.updatedAt ?? '';
    return (Date.parse(issued) - Date.parse(domain.verifiedAt ?? '')) / 1000;
  });
  const since = new Date(0).toISOString();
  let placed = 0;
  for (const name of names) placed += await store.countCertificateOrders(since, 'placed', name);
  const rate = DOMAINS / seconds;

  console.log(
    `\nACME issuance against Pebble (nonce rejection off), ${WORKERS} workers × ${CONCURRENCY} jobs, SQLite`,
  );
  console.log(
    '| run | certificates | seconds | certificates/s | ÷ baseline | orders per certificate | verified→active median s | p99 s |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  console.log(
    `| bare AcmeIssuer (baseline) | ${baselineCount} | ${(baselineCount / baselineRate).toFixed(1)} | ${baselineRate.toFixed(2)} | 1.00 | 1.00 | | |`,
  );
  console.log(
    `| Portico workers | ${DOMAINS} | ${seconds.toFixed(1)} | ${rate.toFixed(2)} | ${(rate / baselineRate).toFixed(2)} | ${(placed / DOMAINS).toFixed(2)} | ${percentile(latencies, 50).toFixed(1)} | ${percentile(latencies, 99).toFixed(1)} |`,
  );
  await api.close();
} finally {
  await pebble.stop();
  await responder.close();
  await store.close();
  dnsProcess.kill();
  rmSync(dataDir, { recursive: true, force: true });
}
