import {
  type CertificateService,
  EXPIRING_JOB,
  ISSUE_JOB,
  RENEW_JOB,
  REVOKE_JOB,
} from '../../acme/certificates.js';
import type { JobHandler } from '../runner.js';

/** One ACME order: validation and finalization at the CA take seconds, sometimes a minute or two. */
const ISSUE_TIMEOUT_MS = 4 * 60_000;
/** One revocation request (and the account lookup before it, after a restart). */
const REVOKE_TIMEOUT_MS = 60_000;

/**
 * `cert:issue` and `cert:renew`, whose job key is the hostname, so a name is never issued twice at
 * once, whatever the number of workers: the lease is the lock. `cert:revoke`, one per certificate
 * of a name that left, and `cert:expiring`, one per hostname, for its current certificate.
 */
export function certificateHandlers(
  certificates: CertificateService,
  /**
   * How many CAs one attempt may go through (PORTICO_ACME_DIRECTORY): an order that times out at
   * one goes on to the next in the same attempt, which needs that CA's time too.
   */
  cas = 1,
): JobHandler[] {
  const issueTimeoutMs = ISSUE_TIMEOUT_MS * Math.max(1, cas);
  return [
    {
      kind: ISSUE_JOB,
      timeoutMs: issueTimeoutMs,
      run: (job, signal) => certificates.issue(String(job.payload.hostname), signal),
    },
    {
      kind: RENEW_JOB,
      timeoutMs: issueTimeoutMs,
      run: (job, signal) => certificates.renew(String(job.payload.hostname), signal),
    },
    {
      kind: REVOKE_JOB,
      timeoutMs: REVOKE_TIMEOUT_MS,
      run: (job, signal) => certificates.revoke(String(job.payload.revocationId), job.attempts, signal),
    },
    {
      kind: EXPIRING_JOB,
      run: (job) => certificates.alertExpiring(String(job.payload.hostname), String(job.payload.notAfter)),
    },
  ];
}
