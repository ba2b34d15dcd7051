import { REVERIFY_JOB, VERIFY_JOB, type VerificationService } from '../../domain/verification.js';
import type { JobHandler } from '../runner.js';

/** How long one check of a domain may take: a few DNS round trips with retries, well under a lease. */
const CHECK_TIMEOUT_MS = 20_000;

/**
 * `domain:verify` (polling a `verifying` domain) and `domain:reverify` (watching a live one) run
 * the same check; the domain's status decides what the result means (domain/lifecycle.ts, onCheck)
 * and when the next check runs (domain/verification.ts).
 * The next check is queued by the check itself, in the transaction that records its result.
 */
export function domainCheckHandlers(verification: VerificationService): JobHandler[] {
  return [VERIFY_JOB, REVERIFY_JOB].map((kind) => ({
    kind,
    timeoutMs: CHECK_TIMEOUT_MS,
    async run(job, signal) {
      const domainId = String(job.payload.domainId ?? '');
      await verification.check(domainId, signal);
      return undefined;
    },
  }));
}
