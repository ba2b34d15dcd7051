import {
  type CaaAuthority,
  type CaaRecord,
  type CaaSearch,
  decideCaa,
  findRelevantCaa,
  formatCaa,
} from '../dns/caa.js';
import { describeExtendedError, isDnssecFailure } from '../dns/checks.js';
import type { LookupFailure, Resolver } from '../dns/resolver.js';
import { CertIssueError } from './issuer.js';

/*
 * CAA before ordering (RFC 8659): the names of an order are checked against the CAA records DNS
 * holds for them, with the resolver verification uses, before the CA is asked. A CA checks CAA
 * itself and refuses a forbidden name, but only after the order was placed (spending the account's
 * hourly budget and the name's failed-validation allowance), and its refusal names neither the
 * record nor where it is. Checked here, the customer reads which record forbids which CA, and no
 * order is placed until they change it.
 */

/**
 * Rejects with `caa_forbidden` when the CAA records of any of `names` forbid `ca`, and with the
 * retryable `caa_lookup_failed` when DNS does not answer for them: a CA that cannot read CAA does
 * not issue, so a failure is never taken for a permission. Resolves when every name may be ordered.
 */
export async function checkCaa(
  resolver: Resolver,
  names: readonly string[],
  ca: CaaAuthority,
  signal?: AbortSignal,
): Promise<void> {
  for (const name of names) {
    const refusal = caaRefusal(await findRelevantCaa(resolver, name, { signal }), name, ca);
    if (refusal !== undefined) throw refusal;
  }
}

/**
 * What the relevant CAA records of `name` (`search`, from `findRelevantCaa`) say against ordering
 * it from `ca`, as the error the order fails with; undefined when they allow it. `portico domains
 * check` shows the same words.
 */
export function caaRefusal(search: CaaSearch, name: string, ca: CaaAuthority): CertIssueError | undefined {
  if (!search.ok) {
    // The lookup failed where the chain ended: that name's DNS host is the one to fix.
    const hop = search.cnameChain.at(-1);
    const where = hop === undefined ? search.at : `${hop} (the CNAME target of ${search.at})`;
    const extended = search.extendedError;
    const why = extended
      ? `${failureWords(search.failure)} with ${describeExtendedError(extended)}`
      : failureWords(search.failure);
    const dnssec =
      extended && isDnssecFailure(extended)
        ? ' Its DNSSEC does not validate: every CA refuses the name until its DS record at the parent zone matches its keys and its signatures are current.'
        : '';
    return new CertIssueError(
      'caa_lookup_failed',
      `Could not read the CAA records of ${name}: ${why} for ${where}.${dnssec} ` +
        'No CA issues without reading them; this is tried again shortly.',
      { hostname: name },
    );
  }
  if (search.at === undefined) return undefined;
  const decision = decideCaa(search.records, name, ca);
  if (decision.allowed) return undefined;
  const where =
    search.cnameChain.length > 0
      ? `${search.at} (through its CNAME to ${search.cnameChain.at(-1)})`
      : search.at;
  // The records belong to the end of the CNAME chain: that is where they are changed.
  const owner = search.cnameChain.at(-1) ?? search.at;
  return new CertIssueError(
    'caa_forbidden',
    forbidden(decision.why, decision.records, where, owner, name, ca),
    {
      hostname: name,
    },
  );
}

/** What the customer reads: the records, where they are, whom they forbid, and what to change. */
function forbidden(
  why: 'critical' | 'nobody' | 'other_ca' | 'account' | 'method',
  records: readonly CaaRecord[],
  where: string,
  owner: string,
  name: string,
  ca: CaaAuthority,
): string {
  const found = `${records.map((record) => `CAA ${formatCaa(record)}`).join(', ')} at ${where}`;
  const identity = ca.identities?.[0];
  const allow = identity === undefined ? '' : ` (\`${owner}. CAA 0 issue "${identity}"\`)`;
  switch (why) {
    case 'critical':
      return (
        `${found} forbids every CA to issue for ${name}: it is marked critical (flag 128) and its tag is ` +
        'not one a CA knows. Remove it, or clear its critical flag.'
      );
    case 'nobody':
      return (
        `${found} forbids every CA to issue for ${name}. Add a record allowing ` +
        `${identity ?? "this platform's CA"}${allow}, or remove these.`
      );
    case 'other_ca':
      return (
        `${found} forbids ${identity} for ${name}: only the CAs named there may issue. Add a record ` +
        `allowing ${identity}${allow} beside it, or remove it.`
      );
    case 'account':
      return (
        `${found} allows ${identity} for ${name} for another ACME account only (accounturi; this ` +
        `platform's account is ${ca.accountUri}). Add a record without accounturi${allow}, or with this account.`
      );
    case 'method':
      return (
        `${found} allows ${identity} for ${name} only by other validation methods (validationmethods) ` +
        `than the ones this platform answers (${(ca.validationMethods ?? []).join(', ')}). Add those ` +
        'methods to the record, or remove the parameter.'
      );
  }
}

function failureWords(failure: Exclude<LookupFailure, 'nxdomain' | 'nodata'>): string {
  switch (failure) {
    case 'servfail':
      return 'DNS answered SERVFAIL';
    case 'refused':
      return 'DNS refused the query';
    case 'timeout':
      return 'DNS did not answer in time';
    case 'unreachable':
      return 'the DNS servers could not be reached';
    case 'cname_loop':
      return 'the CNAME chain loops';
  }
}
