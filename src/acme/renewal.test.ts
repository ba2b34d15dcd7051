import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { issueRetrySeconds, renewalTime } from './renewal.js';

const DAY_MS = 86_400_000;
const MINUTE = 60;
const HOUR = 3600;

describe('renewalTime', () => {
  const fractionOf = (percent?: string) =>
    loadConfig({ PORTICO_DNS_SERVERS: '127.0.0.1', PORTICO_CERT_RENEW_PERCENT: percent }).certRenewFraction;
  const notBefore = new Date('2025-01-01T00:00:00.000Z');
  const notAfter = new Date(notBefore.getTime() + 90 * DAY_MS);

  it('renews a 90-day certificate with the shipped default (33 %) about 30 days before it expires', () => {
    const renewAt = renewalTime(notBefore, notAfter, fractionOf(undefined));
    expect(renewAt.toISOString()).toBe(new Date(notAfter.getTime() - 0.33 * 90 * DAY_MS).toISOString());
    expect((notAfter.getTime() - renewAt.getTime()) / DAY_MS).toBeCloseTo(29.7, 5);
  });

  it('renews at the configured fraction of the lifetime left', () => {
    expect(renewalTime(notBefore, notAfter, fractionOf('50')).toISOString()).toBe('2025-02-15T00:00:00.000Z');
    expect(renewalTime(notBefore, notAfter, fractionOf('10')).toISOString()).toBe('2025-03-23T00:00:00.000Z');
  });

  it('scales with the lifetime, so a short-lived certificate renews in time too', () => {
    const sixDays = new Date(notBefore.getTime() + 6 * DAY_MS);
    const renewAt = renewalTime(notBefore, sixDays, 1 / 3);
    expect(renewAt.toISOString()).toBe('2025-01-05T00:00:00.000Z');
  });
});

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
