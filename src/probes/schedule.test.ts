import { describe, expect, it } from 'vitest';
import { nextProbeAt, probePhaseMs } from './schedule.js';

describe('probe schedule', () => {
  const interval = 300;

  it('puts each domain at a fixed slot of every interval, after now', () => {
    const now = new Date('2026-12-05T01:00:00.000Z');
    const first = nextProbeAt('dom_abc', now, interval);
    expect(first.getTime()).toBeGreaterThan(now.getTime());
    expect(first.getTime() - now.getTime()).toBeLessThanOrEqual(interval * 1000);
    // The run after the first lands one interval later: the slot does not drift with run time.
    const second = nextProbeAt('dom_abc', new Date(first.getTime() + 4_000), interval);
    expect(second.getTime() - first.getTime()).toBe(interval * 1000);
    // Asked exactly at its slot, the next one is a whole interval away.
    expect(nextProbeAt('dom_abc', first, interval).getTime() - first.getTime()).toBe(interval * 1000);
  });

  it('spreads many domains over the interval instead of one herd', () => {
    const buckets = new Array(10).fill(0);
    for (let i = 0; i < 5000; i++) {
      const phase = probePhaseMs(`dom_${i.toString(36).padStart(12, '0')}`, interval * 1000);
      buckets[Math.floor(phase / (interval * 100))]++;
    }
    // 500 expected per tenth of the interval; a herd would put them all in one.
    for (const count of buckets) {
      expect(count).toBeGreaterThan(400);
      expect(count).toBeLessThan(600);
    }
  });
});
