import { createHash } from 'node:crypto';

/**
 * When each domain is probed: once per interval, at a fixed offset into it (its phase) drawn from a
 * hash of its id. A fleet of domains activated together, or a migration that schedules all of them
 * at once, is spread evenly over the interval instead of probed in one herd, and a domain keeps its
 * slot from one run to the next, however long a probe took, so the spread never decays.
 */

/** The domain's offset into every interval, in ms: uniform over [0, intervalMs). */
export function probePhaseMs(domainId: string, intervalMs: number): number {
  const hash = createHash('sha256').update(domainId).digest();
  // 48 bits of hash: no modulo bias worth the name for any interval below years.
  return hash.readUIntBE(0, 6) % intervalMs;
}

/** The domain's first slot strictly after `now`. */
export function nextProbeAt(domainId: string, now: Date, intervalSeconds: number): Date {
  const intervalMs = intervalSeconds * 1000;
  const phase = probePhaseMs(domainId, intervalMs);
  const start = Math.floor(now.getTime() / intervalMs) * intervalMs + phase;
  return new Date(start > now.getTime() ? start : start + intervalMs);
}
