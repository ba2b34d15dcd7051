import { EDGE_PROBE_TIMEOUT_MS, PROBE_JOB, type ServingProbes } from '../../probes/serving-probes.js';
import type { JobHandler } from '../runner.js';

/**
 * `domain:probe`: one serving probe of one domain at every edge address (probes/serving-probes.ts).
 * The edges are asked at once, each within EDGE_PROBE_TIMEOUT_MS, so a run takes at most about
 * that long; a domain whose edges hang holds one worker slot for that time, and the others run on.
 * The next probe is queued by the probe itself, in the transaction that records its report.
 */
export function domainProbeHandlers(probes: ServingProbes): JobHandler[] {
  return [
    {
      kind: PROBE_JOB,
      // The edges' time, and the store's around it.
      timeoutMs: EDGE_PROBE_TIMEOUT_MS + 20_000,
      async run(job, signal) {
        await probes.probe(String(job.payload.domainId ?? ''), signal);
        return undefined;
      },
    },
  ];
}
