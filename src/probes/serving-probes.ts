import type { Logger } from 'pino';
import { type Clock, iso } from '../domain/clock.js';
import { newId } from '../domain/ids.js';
import { SERVED_STATUSES, STATUS_TABLE } from '../domain/lifecycle.js';
import type { Domain, ServingReport, Store } from '../store/store.js';
import { type EdgeAddress, leafSha256, type ProbeOutcome, probeEdge } from './edge-probe.js';
import { nextProbeAt } from './schedule.js';

/**
 * Serving probes (docs/architecture.md, "Serving probes"): what a visitor actually gets from each
 * edge, beside what DNS says. Each active domain has one `domain:probe` job, due at its slot of
 * every interval (schedule.ts); a run asks every edge address at once (edge-probe.ts), stores the
 * report on the domain and queues the next run, in one transaction. A probe observes only: it
 * never changes a status, never orders a certificate. What it announces is a change of its own
 * verdict: `domain.degraded` when an edge starts failing, `domain.recovered` when all serve again.
 */

export const PROBE_JOB = 'domain:probe';
export const probeJobKey = (domainId: string) => `${PROBE_JOB}:${domainId}`;

/** How long one edge gets for connect, handshake and the answer's head: a slow edge is a finding, not a stall. */
export const EDGE_PROBE_TIMEOUT_MS = 10_000;

export type ServingEvent = 'domain.degraded' | 'domain.recovered';

export interface ProbeSettings {
  /** 0: probes are off. */
  probeIntervalSeconds: number;
  edgeProbeAddresses: readonly EdgeAddress[];
  /** How long one edge gets (tests shorten it); default EDGE_PROBE_TIMEOUT_MS. */
  probeTimeoutMs?: number;
}

export interface ProbeHooks {
  /** Inside the transaction that stored the report, so the event and the report are never apart. */
  onEvent?(tx: Store, domain: Domain, event: ServingEvent, now: Date): Promise<void>;
  /** Once per edge probed. */
  onProbe?(outcome: ProbeOutcome): void;
}

/**
 * The event a new report makes, if any. An active domain counts as serving until a probe says
 * otherwise (activation promised it, and clears the last report), so the first failing probe
 * after activation is a degradation too.
 */
export function servingEvent(before: ServingReport | null, after: ServingReport): ServingEvent | undefined {
  const wasOk = before?.ok ?? true;
  if (wasOk && !after.ok) return 'domain.degraded';
  if (!wasOk && after.ok) return 'domain.recovered';
  return undefined;
}

export class ServingProbes {
  constructor(
    private readonly store: Store,
    private readonly settings: ProbeSettings,
    private readonly clock: Clock,
    private readonly hooks: ProbeHooks = {},
  ) {}

  get enabled(): boolean {
    return this.settings.probeIntervalSeconds > 0 && this.settings.edgeProbeAddresses.length > 0;
  }

  /**
   * A domain just became active: its last report (from an earlier time it was served) is dropped,
   * and its probes start at its slot. Inside the transaction that activated it.
   */
  async onActive(tx: Store, domain: Domain, now: Date): Promise<void> {
    if (domain.serving !== null) await tx.recordServing(domain.id, null);
    if (this.enabled) await this.enqueue(tx, domain, now);
  }

  /**
   * Gives every served domain that has no probe job one, at its slot: after an upgrade, or when
   * probes were off before. Run once when a worker starts; cheap when nothing is missing (one
   * indexed anti-join). Answers how many were scheduled.
   */
  async scheduleMissing(logger?: Logger, batch = 1000): Promise<number> {
    if (!this.enabled) return 0;
    let scheduled = 0;
    for (let after = ''; ; ) {
      const domains = await this.store.listDomainsWithoutJob(SERVED_STATUSES, `${PROBE_JOB}:`, after, batch);
      const now = this.clock.now();
      for (const domain of domains) await this.enqueue(this.store, domain, now);
      scheduled += domains.length;
      const last = domains.at(-1);
      if (last === undefined || domains.length < batch) break;
      after = last.id;
    }
    if (scheduled > 0) logger?.info({ scheduled }, 'probes: scheduled served domains that had no probe');
    return scheduled;
  }

  /**
   * The `domain:probe` job: probes the domain at every edge address and records what each served.
   * A domain that is gone, no longer served, or whose probes are off is left alone, and its job ends.
   */
  async probe(domainId: string, signal?: AbortSignal): Promise<void> {
    const before = await this.store.findDomainById(domainId);
    if (!before || !STATUS_TABLE[before.status].served || !this.enabled) return;
    const certificate = await this.store.findCertificate(before.name);
    const expectedSha256 = certificate?.certificatePem ? leafSha256(certificate.certificatePem) : null;
    // Every edge at once: one slow edge costs the probe its timeout, not the sum of them.
    const results = await Promise.all(
      this.settings.edgeProbeAddresses.map((address) =>
        probeEdge({
          address,
          hostname: before.name,
          expectedSha256,
          timeoutMs: this.settings.probeTimeoutMs ?? EDGE_PROBE_TIMEOUT_MS,
          signal,
        }),
      ),
    );
    for (const result of results) this.hooks.onProbe?.(result.outcome);
    const now = this.clock.now();
    const report: ServingReport = {
      checkedAt: iso(now),
      ok: results.every((result) => result.ok),
      edges: results.map(({ outcome: _, ...edge }) => edge),
    };
    await this.store.transaction(async (tx) => {
      // Judged as the domain is now: one that left `active` while the edges were asked is not
      // reported on, and its job ends here.
      const domain = await tx.findDomainById(domainId);
      if (!domain || !STATUS_TABLE[domain.status].served) return;
      // A certificate renewed while the edges were asked makes the comparison moot: the edges may
      // rightly present either. Not judged; the next slot probes against the new one.
      const current = await tx.findCertificate(domain.name);
      if ((current?.certificatePem ? leafSha256(current.certificatePem) : null) !== expectedSha256) {
        await this.enqueue(tx, domain, now);
        return;
      }
      const updated = (await tx.recordServing(domain.id, report)) ?? domain;
      const event = servingEvent(domain.serving, report);
      if (event) await this.hooks.onEvent?.(tx, updated, event, now);
      await this.enqueue(tx, domain, now);
    });
  }

  /** Queues the domain's next probe at its next slot (re-enqueueing the running job reschedules it). */
  private async enqueue(tx: Store, domain: Pick<Domain, 'id' | 'orgId'>, now: Date): Promise<void> {
    const runAt = nextProbeAt(domain.id, now, this.settings.probeIntervalSeconds);
    await tx.enqueueJob(
      {
        kind: PROBE_JOB,
        key: probeJobKey(domain.id),
        payload: { domainId: domain.id },
        orgId: domain.orgId,
        runAt: iso(runAt),
      },
      newId('job'),
      iso(now),
    );
  }
}
