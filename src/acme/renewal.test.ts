import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { ariPollSeconds, ariRenewalTime, issueRetrySeconds, renewalTime } from './renewal.js';

const DAY_MS = 86_400_000;
const MINUTE = 60;
const HOUR = 3600;

describe('renewalTime', () => {
  const fractionOf = (percent?: string) =>
    loadConfig({ PORTICO_DNS_SERVERS: '127.0.0.1', PORTICO_CERT_RENEW_PERCENT: percent }).certRenewFraction;
  const notBefore = new Date('2025-01-01T00:00:00.000Z');
  const notAfter = new Date(notBefore.getTime() + 90 * DAY_MS);
  const daysLeft = (at: Date, until = notAfter) => (until.getTime() - at.getTime()) / DAY_MS;

  it('renews a 90-day certificate at two thirds of its lifetime at the latest (the shipped 33 % left)', () => {
    const latest = renewalTime(notBefore, notAfter, fractionOf(undefined), () => 0);
    expect(daysLeft(latest)).toBeCloseTo(0.33 * 90, 5);
  });

  it('spreads the moment over the tenth of the lifetime before that point, by the random source', () => {
    const earliest = renewalTime(notBefore, notAfter, 1 / 3, () => 0.999_999);
    expect(daysLeft(earliest)).toBeCloseTo(30 + 9, 3);
    const middle = renewalTime(notBefore, notAfter, 1 / 3, () => 0.5);
    expect(daysLeft(middle)).toBeCloseTo(30 + 4.5, 5);
    // A source out of range (a broken one) cannot push the moment outside the spread.
    expect(daysLeft(renewalTime(notBefore, notAfter, 1 / 3, () => 7))).toBeCloseTo(39, 5);
    expect(daysLeft(renewalTime(notBefore, notAfter, 1 / 3, () => -1))).toBeCloseTo(30, 5);
  });

  it('renews at the configured fraction of the lifetime left', () => {
    expect(renewalTime(notBefore, notAfter, fractionOf('50'), () => 0).toISOString()).toBe(
      '2025-02-15T00:00:00.000Z',
    );
    expect(renewalTime(notBefore, notAfter, fractionOf('10'), () => 0).toISOString()).toBe(
      '2025-03-23T00:00:00.000Z',
    );
  });

  it('renews a certificate of less than 10 days at half its lifetime (6-day shortlived: 3 days left)', () => {
    const sixDays = new Date(notBefore.getTime() + 6 * DAY_MS);
    expect(renewalTime(notBefore, sixDays, 1 / 3, () => 0).toISOString()).toBe('2025-01-04T00:00:00.000Z');
    const earliest = renewalTime(notBefore, sixDays, 1 / 3, () => 0.999_999);
    expect(daysLeft(earliest, sixDays)).toBeCloseTo(3 + 0.6, 3);
    // Ten days and more: the configured fraction again.
    const tenDays = new Date(notBefore.getTime() + 10 * DAY_MS);
    expect(
      daysLeft(
        renewalTime(notBefore, tenDays, 1 / 3, () => 0),
        tenDays,
      ),
    ).toBeCloseTo(10 / 3, 5);
  });

  it('spreads certificates issued together over the whole tenth, evenly (seeded source)', () => {
    const random = seeded(16);
    const buckets = new Array<number>(10).fill(0);
    for (let i = 0; i < 10_000; i++) {
      const left = daysLeft(renewalTime(notBefore, notAfter, 1 / 3, random));
      expect(left).toBeGreaterThanOrEqual(30 - 1e-9);
      expect(left).toBeLessThanOrEqual(39 + 1e-9);
      buckets[Math.min(9, Math.floor(left - 30))] = (buckets[Math.min(9, Math.floor(left - 30))] ?? 0) + 1;
    }
    // Nine one-day buckets over the nine-day spread: each holds about a ninth (1,111).
    for (const count of buckets.slice(0, 9)) expect(count).toBeGreaterThan(900);
  });
});

describe('ariRenewalTime', () => {
  const now = new Date('2026-01-10T00:00:00.000Z');
  const window = { start: new Date('2026-01-12T00:00:00.000Z'), end: new Date('2026-01-14T00:00:00.000Z') };

  it('picks a moment in the suggested window by the random source', () => {
    expect(ariRenewalTime(window, now, () => 0).toISOString()).toBe('2026-01-12T00:00:00.000Z');
    expect(ariRenewalTime(window, now, () => 0.5).toISOString()).toBe('2026-01-13T00:00:00.000Z');
  });

  it('keeps a moment picked before while the window still holds it, and draws again when it moved', () => {
    const previous = new Date('2026-01-13T06:00:00.000Z');
    expect(ariRenewalTime(window, now, () => 0, previous)).toEqual(previous);
    const moved = { start: new Date('2026-01-20T00:00:00.000Z'), end: new Date('2026-01-21T00:00:00.000Z') };
    expect(ariRenewalTime(moved, now, () => 0, previous).toISOString()).toBe('2026-01-20T00:00:00.000Z');
  });

  it('renews at once when the window moved into the past (a revocation, an incident at the CA)', () => {
    const past = { start: new Date('2026-01-01T00:00:00.000Z'), end: new Date('2026-01-02T00:00:00.000Z') };
    expect(ariRenewalTime(past, now, () => 0.5, new Date('2026-01-13T00:00:00.000Z'))).toEqual(now);
  });

  it("polls again after the CA's Retry-After, between a minute and a day, six hours when it says nothing", () => {
    expect(ariPollSeconds(undefined)).toBe(6 * HOUR);
    expect(ariPollSeconds(2 * HOUR)).toBe(2 * HOUR);
    expect(ariPollSeconds(1)).toBe(MINUTE);
    expect(ariPollSeconds(7 * 24 * HOUR)).toBe(24 * HOUR);
  });
});

/** A small seeded generator (mulberry32), so the spread test draws the same numbers each run. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

describe('issueRetrySeconds', () => {
  const series = (retryable: boolean) =>
    Array.from({ length: 8 }, (_, i) => issueRetrySeconds(i + 1, retryable));

  it('retries a retryable failure within a minute, then ever less often, capped at 6 hours', () => {
    expect(series(true)).toEqual([
      1 * MINUTE,
      5 * MINUTE,
      15 * MINUTE,
      1 * HOUR,
      3 * HOUR,
      6 * HOUR,
      6 * HOUR,
      6 * HOUR,
    ]);
    expect(issueRetrySeconds(1000, true)).toBe(6 * HOUR);
  });

  it('waits longer after a permanent failure (the customer must change DNS), capped at a day', () => {
    expect(series(false)).toEqual([
      1 * HOUR,
      3 * HOUR,
      6 * HOUR,
      12 * HOUR,
      24 * HOUR,
      24 * HOUR,
      24 * HOUR,
      24 * HOUR,
    ]);
    expect(issueRetrySeconds(1000, false)).toBe(24 * HOUR);
  });

  it('never waits less after more failures, and never less for a permanent failure than a retryable one', () => {
    for (const retryable of [true, false]) {
      const waits = series(retryable);
      for (let i = 1; i < waits.length; i++) expect(waits[i]).toBeGreaterThanOrEqual(waits[i - 1] as number);
    }
    for (let failures = 1; failures <= 8; failures++) {
      expect(issueRetrySeconds(failures, false)).toBeGreaterThan(issueRetrySeconds(failures, true));
    }
  });

  it('honours a Retry-After from the CA when it asks for longer, and only then', () => {
    expect(issueRetrySeconds(1, true, 2 * HOUR)).toBe(2 * HOUR);
    expect(issueRetrySeconds(6, true, 30)).toBe(6 * HOUR);
    expect(issueRetrySeconds(1, false, 30)).toBe(1 * HOUR);
    expect(issueRetrySeconds(1, true, undefined)).toBe(1 * MINUTE);
  });
});
