/**
 * npm run bench:acme — 200 verified domains issued against Pebble (Debian's package) by 2 workers,
 * over HTTP-01 and then 200 more over delegated DNS-01 (issue 15) in the same run: certificates per
 * second, orders per certificate (1.00 means no order was placed twice), and the time from `verify`
 * (every record present) to the certificate stored (median, p99), printed side by side with the
 * ratio DNS-01 ÷ HTTP-01. The baseline, measured in the same run against the same Pebble, is the
 * bare ACME issuer ordering certificates directly over HTTP-01 at the same concurrency, with no
 * store, queue or worker around it.
 *
 * DNS-01 runs as `serve` runs it with the dns role: the domains' `_acme-challenge` CNAMEs lead into
 * the challenge zone, which the loopback DNS server (Pebble's resolver) delegates to the dns role in
 * this process, answering from the store the workers write. The dns role's own queries per second
 * are `npm run bench:dns`.
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
import { startDnsRole } from '../src/roles.js';
import { createServices } from '../src/services.js';
import { createStore } from '../src/store/index.js';
import { Worker } from '../src/worker/runner.js';
import { createTestApp, wrapApi } from '../test/helpers/api.js';
import { MemoryChallengeStore, startHttp01Responder } from '../test/helpers/http01-responder.js';
import { startPebble } from '../test/helpers/pebble.js';
import { fixed, ratio, table } from './lib/report.js';

const DOMAINS = Number(process.env.BENCH_DOMAINS ?? 200);
const WORKERS = 2;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const ZONE = 'acme-challenges.bench.test';
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

/** What one run of Portico's workers measured. */
interface Run {
  label: string;
  seconds: number;
  rate: number;
  ordersPerCertificate: number;
  medianSeconds: number;
  p99Seconds: number;
}

try {
  const settings = {
    PORTICO_DATA_DIR: dataDir,
    PORTICO_APPS_DOMAIN: 'apps.bench.test',
    PORTICO_DNS_SERVERS: dnsAddress,
    PORTICO_TLS_ISSUER: 'acme',
    PORTICO_ACME_DIRECTORY: pebble.directoryUrl,
    PORTICO_ACME_CA_FILE: pebble.caFile,
    PORTICO_ISSUANCE_RATE_PER_HOUR: '100000',
  };
  const config = loadConfig(settings);
  // The same, with the challenge zone: a domain whose delegation is in place is ordered over DNS-01.
  const dnsConfig = loadConfig({
    ...settings,
    PORTICO_ACME_CHALLENGE: 'dns-01,http-01',
    PORTICO_ACME_DNS_ZONE: ZONE,
    PORTICO_DNS_LISTEN: '127.0.0.1:0',
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

  const logger = pino({ level: 'silent' });

  /**
   * Portico: `DOMAINS` domains added and given their records (the ownership TXT and the routing
   * CNAME, and with `delegated` the `_acme-challenge` CNAME into the challenge zone), all verified,
   * then the workers do the rest.
   */
  const measure = async (label: string, runConfig: typeof config, prefix: string, delegated: boolean) => {
    const services = await createServices({ config: runConfig, store, clock: systemClock, logger });
    const api = wrapApi(
      await buildApi({ config: runConfig, store, clock: systemClock, services }),
      runConfig,
      store,
      systemClock,
    );
    try {
      const key = await api.keyFor(`bench-${prefix}`);
      const appId = await createTestApp(api, key, `acme-bench-${prefix}`);
      const names: string[] = [];
      for (let i = 0; i < DOMAINS; i++) {
        const name = `${prefix}${i}.acme-bench.com`;
        const added = (await api.call(key, 'POST', `/v1/apps/${appId}/domains`, { domain: name })).json();
        const delegation = (added.dns_records as { name: string; value: string; purpose: string }[]).find(
          (record) => record.purpose === 'certificate',
        );
        if (delegated && !delegation) throw new Error(`no delegation record for ${name}`);
        await ask({
          op: 'set',
          records: [
            [`_mixpeek-verify.${name}`, 'TXT', `mixpeek-site-verification=${added.verification_token}`],
            [name, 'CNAME', runConfig.cnameTarget],
            ...(delegated && delegation ? [[delegation.name, 'CNAME', delegation.value]] : []),
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
        (await store.listDomains(appId, { limit: DOMAINS, offset: 0 })).rows.filter(
          (d) => d.status === 'active',
        );
      while ((await active()).length < DOMAINS) await new Promise((resolve) => setTimeout(resolve, 100));
      const seconds = (performance.now() - started) / 1000;
      await Promise.all(workers.map((worker) => worker.stop()));

      const domains = await active();
      const certificates = await store.findCertificatesByDomainIds(domains.map((d) => d.id));
      // From `verify` (its records all present) to the certificate stored.
      const latencies = domains.map((domain) => {
        const issued = certificates.find((c) => c.domainId === domain.id)?.updatedAt ?? '';
        return (Date.parse(issued) - Date.parse(domain.verifiedAt ?? '')) / 1000;
      });
      const since = new Date(0).toISOString();
      let placed = 0;
      for (const name of names) placed += await store.countCertificateOrders(since, 'placed', name);
      return {
        label,
        seconds,
        rate: DOMAINS / seconds,
        ordersPerCertificate: placed / DOMAINS,
        medianSeconds: percentile(latencies, 50),
        p99Seconds: percentile(latencies, 99),
      } satisfies Run;
    } finally {
      await api.close();
    }
  };

  const http01 = await measure('Portico workers, HTTP-01', config, 'site', false);
  // The dns role in this process, as `serve` runs it beside the worker; the loopback DNS server
  // follows the delegation to it, as a recursive resolver follows the zone's NS records.
  const dnsRole = await startDnsRole({ config: dnsConfig, store, clock: systemClock, logger });
  let dns01: Run;
  try {
    await ask({ op: 'delegate', zone: ZONE, address: `127.0.0.1:${dnsRole.port}` });
    dns01 = await measure('Portico workers, DNS-01 (delegated)', dnsConfig, 'dns', true);
  } finally {
    await dnsRole.close();
  }

  console.log(
    `\nACME issuance against Pebble (nonce rejection off), ${WORKERS} workers × ${CONCURRENCY} jobs, SQLite`,
  );
  console.log(
    '| run | certificates | seconds | certificates/s | ÷ baseline | orders per certificate | verify→stored median s | p99 s |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  console.log(
    `| bare AcmeIssuer, HTTP-01 (baseline) | ${baselineCount} | ${(baselineCount / baselineRate).toFixed(1)} | ${baselineRate.toFixed(2)} | 1.00 | 1.00 | | |`,
  );
  for (const run of [http01, dns01]) {
    console.log(
      `| ${run.label} | ${DOMAINS} | ${run.seconds.toFixed(1)} | ${run.rate.toFixed(2)} | ${(run.rate / baselineRate).toFixed(2)} | ${run.ordersPerCertificate.toFixed(2)} | ${run.medianSeconds.toFixed(1)} | ${run.p99Seconds.toFixed(1)} |`,
    );
  }
  table(
    'DNS-01 beside HTTP-01, same run',
    ['figure', 'HTTP-01', 'DNS-01', 'DNS-01 ÷ HTTP-01'],
    [
      ['certificates/s', fixed(http01.rate), fixed(dns01.rate), ratio(dns01.rate, http01.rate)],
      [
        'orders per certificate',
        fixed(http01.ordersPerCertificate),
        fixed(dns01.ordersPerCertificate),
        ratio(dns01.ordersPerCertificate, http01.ordersPerCertificate),
      ],
      [
        'verify→stored median s',
        fixed(http01.medianSeconds, 1),
        fixed(dns01.medianSeconds, 1),
        ratio(dns01.medianSeconds, http01.medianSeconds),
      ],
      [
        'verify→stored p99 s',
        fixed(http01.p99Seconds, 1),
        fixed(dns01.p99Seconds, 1),
        ratio(dns01.p99Seconds, http01.p99Seconds),
      ],
    ],
    [':---'],
  );
  console.log(
    "\nThe dns role's queries per second, against the tests' DNS server answering the same names: npm run bench:dns",
  );
} finally {
  await pebble.stop();
  await responder.close();
  await store.close();
  dnsProcess.kill();
  rmSync(dataDir, { recursive: true, force: true });
}
