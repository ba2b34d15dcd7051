/**
 * npm run bench:renewal — how the renewal scheduler spreads and survives, on a simulated clock.
 *
 * No real ACME here: the real certificate service (src/acme/certificates.ts), its renewal timing
 * (renewal.ts), its order budgets and the real job worker run on a real SQLite store, and a
 * SIMULATED issuer stands in for the CA: it answers at once with a certificate of the chosen
 * lifetime (a placeholder PEM nothing here parses), or fails as an unreachable CA while "down".
 *
 * 1. Herd: BENCH_CERTS (10,000) certificates of 90 days issued in the same minute. Where their
 *    renewals land: a histogram over the spread window (the tenth of the lifetime before two
 *    thirds of it), the share of the window covered (target >= 80 %), and the peak orders per
 *    minute, beside the same run with no spread (the fixed third Portico used before), as a ratio.
 *    Order budgets are raised out of the way here, to show the scheduler's own spread.
 * 2. Outage: BENCH_SHORTLIVED (200) `shortlived` certificates (160 h) over 30 simulated days, the
 *    CA down for 24 h in the middle, with the shipped order budgets (all on one budget, the
 *    strictest case): expired certificates served (target 0) and the least lifetime left on any
 *    served certificate.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { CertificateService } from '../src/acme/certificates.js';
import { CertIssueError, type CertIssuer, type IssuedCertificate } from '../src/acme/issuer.js';
import { type RandomSource, RENEWAL_JITTER_FRACTION } from '../src/acme/renewal.js';
import { loadConfig } from '../src/config.js';
import { createApiKey } from '../src/domain/api-keys.js';
import { newId } from '../src/domain/ids.js';
import { SecretBox } from '../src/secrets/secret-box.js';
import { createStore } from '../src/store/index.js';
import type { App, Store } from '../src/store/store.js';
import { certificateHandlers } from '../src/worker/jobs/certificates.js';
import { Worker } from '../src/worker/runner.js';
import { ManualClock } from '../test/helpers/clock.js';
import { fixed, verdict } from './lib/report.js';

const CERTS = Number(process.env.BENCH_CERTS ?? 10_000);
const SHORTLIVED = Number(process.env.BENCH_SHORTLIVED ?? 200);
const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
const T0 = '2027-02-01T00:00:00.000Z';
const logger = pino({ level: 'silent' });

/** The simulated CA: a certificate of `lifetimeMs` from now, at once; unreachable while `down`. */
class SimulatedIssuer implements CertIssuer {
  readonly kind = 'internal';
  readonly wildcards = false;
  down = false;
  /** The simulated time of every order it took. */
  readonly orders: number[] = [];
  constructor(
    private readonly clock: ManualClock,
    private readonly lifetimeMs: number,
  ) {}
  async issue(hostnames: string[]): Promise<IssuedCertificate> {
    const now = this.clock.now();
    if (this.down) throw new CertIssueError('network', 'simulated CA outage: connection refused');
    this.orders.push(now.getTime());
    return {
      certificatePem: `-----BEGIN CERTIFICATE-----\nsimulated ${hostnames[0]} ${now.toISOString()}\n-----END CERTIFICATE-----\n`,
      privateKeyPem: 'simulated key',
      notBefore: now,
      notAfter: new Date(now.getTime() + this.lifetimeMs),
      issuer: 'internal',
    };
  }
}

/** mulberry32: a seeded source, so two runs spread the same way. */
function seeded(seed: number): RandomSource {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

interface Rig {
  store: Store;
  clock: ManualClock;
  issuer: SimulatedIssuer;
  worker: Worker;
  close(): Promise<void>;
}

/** A real SQLite store with `count` certificates asked for at T0 (one app owns them all). */
async function openRig(
  count: number,
  lifetimeMs: number,
  random: RandomSource,
  env: Record<string, string>,
): Promise<Rig> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'portico-bench-renewal-'));
  const clock = new ManualClock(T0);
  const config = loadConfig({ PORTICO_DATA_DIR: dataDir, PORTICO_DNS_SERVERS: '127.0.0.1', ...env });
  const store = await createStore({ dataDir });
  const issuer = new SimulatedIssuer(clock, lifetimeMs);
  const box = SecretBox.fromText(Buffer.alloc(32, 7).toString('base64'));
  const service = new CertificateService(store, issuer, box, config, clock, {}, random);
  const now = clock.now().toISOString();
  const { orgId } = await createApiKey(store, clock, { orgName: 'renewal-bench', scope: 'write' });
  const app: App = {
    id: newId('app'),
    orgId,
    slug: 'bench',
    title: 'bench',
    description: null,
    originUrl: 'http://127.0.0.1:9',
    createdAt: now,
    updatedAt: now,
  };
  await store.insertApp(app);
  for (let start = 0; start < count; start += 2_000) {
    await store.transaction(async (tx) => {
      for (let i = start; i < Math.min(count, start + 2_000); i++) {
        await service.requestForApp(tx, app, `c${i}.renewal.bench`, clock.now());
      }
    });
  }
  const worker = new Worker({
    store,
    handlers: certificateHandlers(service),
    clock,
    logger,
    concurrency: 32,
    leaseSeconds: 600,
  });
  return {
    store,
    clock,
    issuer,
    worker,
    close: async () => {
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Moves the clock to `at` (never back) and runs every job due then. */
async function runUntil(rig: Rig, at: number): Promise<void> {
  const now = rig.clock.now().getTime();
  if (at > now) rig.clock.advance((at - now) / 1000);
  await rig.worker.drain();
}

/** Part 1: where the renewals of certificates issued together land. */
async function herd(random: RandomSource, minuteSteps = true) {
  const lifetime = 90 * DAY_MS;
  // Budgets out of the way: the scheduler's own spread is measured, not the limiter's.
  const rig = await openRig(CERTS, lifetime, random, {
    PORTICO_ISSUANCE_RATE_PER_HOUR: '100000',
    PORTICO_ISSUANCE_RATE_PER_ORG_PER_HOUR: '100000',
  });
  try {
    const t0 = rig.clock.now().getTime();
    await rig.worker.drain();
    const issued = rig.issuer.orders.length;
    const issuedWithin = (Math.max(...rig.issuer.orders) - t0) / MINUTE_MS;
    // The spread window: the tenth of the lifetime before two thirds of it (33 % left).
    const fractionLeft = 0.33;
    const windowEnd = t0 + lifetime * (1 - fractionLeft);
    const windowStart = windowEnd - lifetime * RENEWAL_JITTER_FRACTION;
    await runUntil(rig, windowStart - MINUTE_MS);
    // Minute steps, so orders are timed to the minute; without a spread every renewal is due at
    // the window's end, and one step shows it.
    if (minuteSteps) {
      for (let at = windowStart; at <= windowEnd + MINUTE_MS; at += MINUTE_MS) await runUntil(rig, at);
    } else {
      await runUntil(rig, windowEnd + MINUTE_MS);
    }
    const renewals = rig.issuer.orders.slice(issued);
    return { issued, issuedWithin, renewals, windowStart, windowEnd };
  } finally {
    await rig.close();
  }
}

function histogram(times: number[], start: number, end: number, bins: number): number[] {
  const counts = new Array<number>(bins).fill(0);
  for (const time of times) {
    const bin = Math.min(bins - 1, Math.max(0, Math.floor(((time - start) / (end - start)) * bins)));
    counts[bin] = (counts[bin] ?? 0) + 1;
  }
  return counts;
}

function peakPerMinute(times: number[]): number {
  const perMinute = new Map<number, number>();
  for (const time of times) {
    const minute = Math.floor(time / MINUTE_MS);
    perMinute.set(minute, (perMinute.get(minute) ?? 0) + 1);
  }
  return Math.max(0, ...perMinute.values());
}

/** Part 2: shortlived certificates through a day of CA outage. */
async function outage() {
  const lifetime = 160 * HOUR_MS;
  const rig = await openRig(SHORTLIVED, lifetime, seeded(2), {});
  const days = 30;
  const downFrom = rig.clock.now().getTime() + 15 * DAY_MS - 12 * HOUR_MS;
  const downUntil = downFrom + DAY_MS;
  const step = 5 * MINUTE_MS;
  let expiredServed = 0;
  let expiredSteps = 0;
  let leastLeft = Number.POSITIVE_INFINITY;
  let leastLeftHours = Number.POSITIVE_INFINITY;
  let firstAllIssued: number | undefined;
  try {
    const t0 = rig.clock.now().getTime();
    for (let at = t0; at <= t0 + days * DAY_MS; at += step) {
      rig.issuer.down = at >= downFrom && at < downUntil;
      await runUntil(rig, at);
      // What the edge would serve now: every stored certificate (status issued, or failed with the
      // previous one still stored), read through the store's own lifetime statistics.
      const stats = await rig.store.certificateLifetimeStats(new Date(at).toISOString(), [0]);
      const [expired = 0] = stats.below;
      const issuedNow = await countServable(rig.store);
      if (firstAllIssued === undefined && issuedNow === SHORTLIVED) firstAllIssued = at;
      if (firstAllIssued === undefined) continue;
      expiredServed = Math.max(expiredServed, expired);
      if (expired > 0) expiredSteps++;
      if (stats.leastLeft !== null && stats.leastLeft < leastLeft) {
        leastLeft = stats.leastLeft;
        leastLeftHours = stats.leastLeft * 160;
      }
    }
    return {
      expiredServed,
      expiredSteps,
      leastLeft,
      leastLeftHours,
      orders: rig.issuer.orders.length,
      allIssuedAfterHours: firstAllIssued === undefined ? Number.NaN : (firstAllIssued - t0) / HOUR_MS,
    };
  } finally {
    await rig.close();
  }
}

/** Certificates issued (being served), whatever their expiry: `not_after` before the end of time. */
async function countServable(store: Store): Promise<number> {
  return (await store.certificateExpiryStats('9999-12-31T00:00:00.000Z')).expiringSoon;
}

const began = Date.now();
console.log('# bench:renewal — simulated clock, real SQLite store, the real certificate service and worker;');
console.log('# a SIMULATED issuer stands in for the CA (no real ACME). Figures on a shared, loaded machine.');

const spread = await herd(seeded(1));
const fixedThird = await herd(() => 0, false);
const span = spread.windowEnd - spread.windowStart;
const bins = histogram(spread.renewals, spread.windowStart, spread.windowEnd, 20);
const fine = histogram(spread.renewals, spread.windowStart, spread.windowEnd, 100);
const covered = fine.filter((count) => count > 0).length / fine.length;
const sorted = [...spread.renewals].sort((a, b) => a - b);
const quantile = (q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? Number.NaN;
const middle98 = (quantile(0.99) - quantile(0.01)) / span;
const peak = peakPerMinute(spread.renewals);
const peakBefore = peakPerMinute(fixedThird.renewals);

console.log(
  `\n## 1. ${CERTS} certificates of 90 days issued together (all ${spread.issued} within ${fixed(spread.issuedWithin, 0)} simulated minute(s))`,
);
console.log(
  `Renewal window: ${new Date(spread.windowStart).toISOString()} .. ${new Date(spread.windowEnd).toISOString()} (${fixed(span / DAY_MS, 1)} days: the tenth of the lifetime before two thirds of it)`,
);
console.log(
  `Renewals placed: ${spread.renewals.length}; histogram, 20 bins of ${fixed(span / 20 / HOUR_MS, 1)} h:`,
);
const widest = Math.max(1, ...bins);
bins.forEach((count, i) => {
  const from = ((i / bins.length) * span) / DAY_MS;
  console.log(
    `  +${fixed(from, 2).padStart(5)} d | ${'#'.repeat(Math.round((count / widest) * 50)).padEnd(50)} ${count}`,
  );
});
console.log('\n| figure | spread (now) | fixed third, no spread (before) | target |');
console.log('|---|---|---|---|');
console.log(
  `| share of the window covered (bins of 1 % holding a renewal) | ${fixed(covered * 100, 0)} % | ${fixed((histogram(fixedThird.renewals, spread.windowStart, spread.windowEnd, 100).filter((c) => c > 0).length / 100) * 100, 0)} % | >= 80 %: ${verdict(covered >= 0.8)} |`,
);
console.log(`| span of the middle 98 % of renewals ÷ window | ${fixed(middle98, 2)} | n/a | |`);
console.log(
  `| peak orders per minute | ${peak} | ${peakBefore} | ${fixed(peak / Math.max(1, peakBefore), 4)} of before |`,
);

const survived = await outage();
console.log(
  `\n## 2. ${SHORTLIVED} shortlived (160 h) certificates, 30 simulated days, the CA down 24 h (day 14.5 to 15.5)`,
);
console.log('Shipped order budgets (100/h, 25/h per budget; all on one budget). 5-minute steps.');
console.log('| figure | value | target |');
console.log('|---|---|---|');
console.log(
  `| expired certificates served (most at any step) | ${survived.expiredServed} (${survived.expiredSteps} steps with any) | 0: ${verdict(survived.expiredServed === 0)} |`,
);
console.log(
  `| least lifetime left on any served certificate | ${fixed(survived.leastLeft * 100, 1)} % (${fixed(survived.leastLeftHours, 1)} h) | > 0 |`,
);
console.log(`| orders placed (issuance and renewals) | ${survived.orders} | |`);
console.log(
  `| every certificate first issued after | ${fixed(survived.allIssuedAfterHours, 1)} h (budget-bound) | |`,
);
console.log(`\n(wall time ${fixed((Date.now() - began) / 1000, 1)} s)`);
