import type { AcmeIssuer, IssuerLogger } from './acme-issuer.js';
import type { RenewalInfo } from './ari.js';
import {
  CertIssueError,
  type CertIssueErrorCode,
  type CertIssuer,
  type IssuedCertificate,
  type IssueOptions,
  type RevocationReason,
} from './issuer.js';

/**
 * Failures that are the CA's own, where another CA may well succeed right away: it limits us (429),
 * fails (5xx), cannot be reached, or does not finish in time. A failure of the customer's (DNS,
 * CAA, a name the CA will not issue for, a challenge the edge did not pass) would fail the same at
 * any CA, and trying the next only spends its failed-validation allowance too.
 */
const CA_SIDE: ReadonlySet<CertIssueErrorCode> = new Set<CertIssueErrorCode>([
  'rate_limited',
  'server_error',
  'network',
  'timeout',
  'bad_nonce',
]);

/** Whether another CA may succeed where this failure happened. */
export function isCaSide(error: unknown): error is CertIssueError {
  return error instanceof CertIssueError && CA_SIDE.has(error.code);
}

/**
 * Several ACME CAs in order of preference (`PORTICO_ACME_DIRECTORY` as a list), each with its own
 * account (and external account binding). An order goes to the first CA whose CAA records allow
 * it (each CA judged by its own `caaIdentities`); one that fails for a reason of the CA's goes on
 * to the next in the same attempt, so a CA outage or a rate limit costs no retry; a reason of the
 * customer's stops there. What concerns a certificate already issued (its renewal information,
 * its revocation, the `replaces` of its renewal) goes to the CA that issued it.
 */
export class FailoverIssuer implements CertIssuer {
  readonly kind = 'acme';
  readonly wildcards = false;

  constructor(
    private readonly cas: readonly AcmeIssuer[],
    private readonly logger?: IssuerLogger,
  ) {
    if (cas.length === 0) throw new TypeError('at least one ACME CA is needed');
  }

  /**
   * Passes when some CA may be ordered from: CAA refuses only when it refuses every CA. A CA that
   * cannot be asked now (its directory or account unreachable) leaves the decision to `issue`.
   */
  async precheck(hostnames: string[], options: IssueOptions = {}): Promise<void> {
    const refusals: CertIssueError[] = [];
    for (const ca of this.cas) {
      try {
        await ca.precheck(hostnames, options);
        return;
      } catch (error) {
        if (error instanceof CertIssueError && error.code === 'caa_forbidden') refusals.push(error);
        else if (isCaSide(error)) return;
        else throw error;
      }
    }
    throw everyCaRefused(refusals);
  }

  async issue(hostnames: string[], options: IssueOptions = {}): Promise<IssuedCertificate> {
    const refusals: CertIssueError[] = [];
    let caSide: CertIssueError | undefined;
    for (const ca of this.cas) {
      options.signal?.throwIfAborted();
      try {
        // CAA is judged for each CA by its own identities; a refusal moves on to the next.
        await ca.precheck(hostnames, options);
      } catch (error) {
        if (error instanceof CertIssueError && error.code === 'caa_forbidden') {
          refusals.push(error);
          continue;
        }
        if (!isCaSide(error)) throw error;
        caSide = this.failedOver(ca, error, hostnames);
        continue;
      }
      // `replaces` names a certificate of the CA that issued it: no other CA knows it.
      const replaces = this.isIssuerOf(ca, options.caDirectory) ? options.replaces : undefined;
      try {
        return await ca.issue(hostnames, { ...options, replaces });
      } catch (error) {
        if (!isCaSide(error)) throw error;
        caSide = this.failedOver(ca, error, hostnames);
      }
    }
    // A CA that failed on its side may succeed later: that is retried; CAA alone is the customer's.
    throw caSide ?? everyCaRefused(refusals);
  }

  renewalInfo(certificatePem: string, options: IssueOptions = {}): Promise<RenewalInfo | undefined> {
    return this.issuerOf(options.caDirectory).renewalInfo(certificatePem, options);
  }

  revoke(certificatePem: string, reason: RevocationReason, options: IssueOptions = {}): Promise<void> {
    return this.issuerOf(options.caDirectory).revoke(certificatePem, reason, options);
  }

  /** The CA that issued a certificate: by its directory, or the first (certificates stored before several CAs). */
  private issuerOf(caDirectory: string | undefined): AcmeIssuer {
    return this.cas.find((ca) => this.isIssuerOf(ca, caDirectory)) ?? (this.cas[0] as AcmeIssuer);
  }

  private isIssuerOf(ca: AcmeIssuer, caDirectory: string | undefined): boolean {
    if (caDirectory === undefined) return ca === this.cas[0];
    return ca.directoryUrl === caDirectory;
  }

  private failedOver(ca: AcmeIssuer, error: CertIssueError, names: string[]): CertIssueError {
    const last = ca === this.cas.at(-1);
    this.logger?.warn(
      { names, directoryUrl: ca.directoryUrl, code: error.code, err: error.message },
      last ? 'ACME CA failed on its side; no CA left to try' : 'ACME CA failed on its side; trying the next',
    );
    return error;
  }
}

/** The CAA refusals of every CA, as one `caa_forbidden` naming each. */
function everyCaRefused(refusals: CertIssueError[]): CertIssueError {
  const [first] = refusals;
  if (first === undefined) return new CertIssueError('unknown', 'No ACME CA is configured.');
  if (refusals.length === 1) return first;
  return new CertIssueError(
    'caa_forbidden',
    `CAA records forbid every configured CA: ${refusals.map((error) => error.message).join(' ')}`,
    { hostname: first.hostname, problemType: first.problemType },
  );
}
