import { type CertificateService, ISSUE_JOB, RENEW_JOB } from '../../acme/certificates.js';
import type { JobHandler } from '../runner.js';

/** One ACME order: validation and finalization at the CA take seconds, sometimes a minute or two. */
const ISSUE_TIMEOUT_MS = 4 * 60_000;

/**
 * `cert:issue` and `cert:renew`. The job key is the hostname, so a name is never issued twice at
 * once, whatever the number of workers: the lease is the lock.
 */
export function certificateHandlers(certificates: CertificateService): JobHandler[] {
  return [
    {
      kind: ISSUE_JOB,
      timeoutMs: ISSUE_TIMEOUT_MS,
      run: (job, signal) => certificates.issue(String(job.payload.hostname), signal),
    },
    {
      kind: RENEW_JOB,
      timeoutMs: ISSUE_TIMEOUT_MS,
      run: (job, signal) => certificates.renew(String(job.payload.hostname), signal),
    },
  ];
}
