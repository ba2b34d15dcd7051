/**
 * CAA (RFC 8659): which certificate authorities a domain's holder allows to issue for it. Read
 * before an order is placed, so a name whose CAA records forbid the CA is reported to its customer
 * at once, in words naming the record, instead of after the CA refused the order (and counted the
 * failure against the account's limits). Also what `portico domains check` shows.
 *
 * Pure DNS and RFC logic: which records are relevant (`findRelevantCaa`), and whether they allow a
 * CA (`decideCaa`). What the CA's identities are, and what to tell the customer, is the issuer's.
 */
import { canonicalName, type ExtendedDnsError, type LookupFailure, type Resolver } from './resolver.js';

/** One CAA record (RFC 8659 section 4.1). */
export interface CaaRecord {
  /** 0, or 128 when the issuer-critical flag is set. */
  flags: number;
  /** The property tag, as DNS holds it (tags compare case-insensitively). */
  tag: string;
  value: string;
}

/** The issuer-critical flag (section 4.1): a CA that does not know the tag must not issue. */
export const CAA_CRITICAL = 128;

/**
 * Property tags whose meaning is known, so a critical one does not forbid by itself: `issue`,
 * `issuewild`, `iodef` (RFC 8659) and `issuemail` (RFC 9495, for S/MIME; it says nothing about
 * TLS certificates). Let's Encrypt's Boulder knows the same four. Any other tag with the critical
 * flag makes every CA refuse (section 4.1), so it forbids here too.
 */
const KNOWN_TAGS: ReadonlySet<string> = new Set(['issue', 'issuewild', 'iodef', 'issuemail']);

/** `0 issue "letsencrypt.org"`: the record as a zone file writes it (RFC 8659 section 4.1.1). */
export function formatCaa(record: CaaRecord): string {
  return `${record.flags} ${record.tag} "${record.value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** Reads `formatCaa`'s form back; undefined for anything else. */
export function parseCaa(text: string): CaaRecord | undefined {
  const match = /^(\d{1,3}) ([A-Za-z0-9]+) "((?:[^"\\]|\\.)*)"$/.exec(text);
  if (match === null) return undefined;
  const [, flags = '', tag = '', value = ''] = match;
  return { flags: Number(flags), tag, value: value.replace(/\\(.)/g, '$1') };
}

/** The relevant CAA record set of a name (RFC 8659 section 3), or why DNS did not tell. */
export type CaaSearch =
  | {
      ok: true;
      /**
       * The name whose CAA records are relevant: the name itself or the closest parent holding
       * some; undefined when no name up to the top-level domain holds any (every CA may issue).
       */
      at: string | undefined;
      records: CaaRecord[];
      /** The CNAMEs followed from `at` to the records, when they are an alias's. */
      cnameChain: string[];
    }
  | {
      ok: false;
      /** The name whose lookup failed: nothing above it was asked. */
      at: string;
      failure: Exclude<LookupFailure, 'nxdomain' | 'nodata'>;
      /** The CNAMEs followed from `at` before the failure: its last is the name that failed. */
      cnameChain: string[];
      /** Why the server failed, when it said (RFC 8914): 6 DNSSEC Bogus makes every CA refuse. */
      extendedError?: ExtendedDnsError;
    };

/**
 * Finds the relevant CAA record set of `hostname` (a wildcard `*.x` is looked up at `x`): its own
 * records if it has any, else its parent's, and so on up to (not including) the root. Each lookup
 * follows CNAMEs, as every resolver does, so a name aliased to a CDN's takes the CDN name's
 * records; the climb continues from the name's own parent, not the alias target's (RFC 8659 drops
 * RFC 6844's climb of the target's tree). A name that does not exist or holds no CAA records
 * passes the question to its parent; a server failure, timeout or CNAME loop ends the search with
 * no answer, because a CA meeting the same failure does not issue either (section 3: "the CA MUST
 * NOT issue" unless it found the record set or proved there is none).
 */
export async function findRelevantCaa(
  resolver: Resolver,
  hostname: string,
  options: { signal?: AbortSignal } = {},
): Promise<CaaSearch> {
  const name = canonicalName(hostname);
  for (let candidate = name.startsWith('*.') ? name.slice(2) : name; candidate !== ''; ) {
    const result = await resolver.lookup(candidate, 'CAA', options);
    if (result.values.length > 0) {
      const records = result.values.flatMap((value) => parseCaa(value) ?? []);
      return { ok: true, at: candidate, records, cnameChain: result.cnameChain };
    }
    const failure = result.failure ?? 'nodata';
    if (failure !== 'nxdomain' && failure !== 'nodata') {
      const { cnameChain, extendedError } = result;
      return { ok: false, at: candidate, failure, cnameChain, ...(extendedError ? { extendedError } : {}) };
    }
    const dot = candidate.indexOf('.');
    candidate = dot < 0 ? '' : candidate.slice(dot + 1);
  }
  return { ok: true, at: undefined, records: [], cnameChain: [] };
}

/** The CA whose authorization is in question. */
export interface CaaAuthority {
  /**
   * The issuer domain names that denote the CA in `issue` records (its ACME directory's
   * `meta.caaIdentities`, e.g. `letsencrypt.org`), or undefined when the CA does not say: then only
   * what forbids every CA can be judged.
   */
  identities: readonly string[] | undefined;
  /** The ACME account URL, checked against RFC 8657's `accounturi` parameter when known. */
  accountUri?: string;
  /** The ACME challenge types that would be answered, checked against RFC 8657's `validationmethods`. */
  validationMethods?: readonly string[];
}

/** Why a CA may not issue, by the records that decided it. */
export type CaaRefusal =
  /** A critical record with a tag no CA knows: nobody may issue. */
  | 'critical'
  /** Every `issue` (or `issuewild`) record is empty (`;`) or malformed: nobody may issue. */
  | 'nobody'
  /** The records allow other CAs only. */
  | 'other_ca'
  /** The records allow the CA, but for another ACME account only (`accounturi`). */
  | 'account'
  /** The records allow the CA, but only by challenge types that are not answered (`validationmethods`). */
  | 'method';

export type CaaDecision =
  | {
      allowed: true;
      /** The record that allows the CA; undefined when no record restricts issuance. */
      by?: CaaRecord;
      /** True when the CA does not say which names are its own and records name some CA. */
      unverified?: boolean;
    }
  | { allowed: false; why: CaaRefusal; records: CaaRecord[] };

/**
 * Whether `records` (the relevant record set of `hostname`) allow `ca` to issue for it (RFC 8659
 * section 4): a critical unknown property forbids; a wildcard name is judged by its `issuewild`
 * records when it has any, else by `issue`; without such records any CA may issue; with them, one
 * must name the CA (case-insensitively) and, when it carries RFC 8657 parameters, allow the
 * account and a challenge type that is answered. A malformed value allows nobody. Unknown
 * parameters are ignored, as CAs ignore them.
 */
export function decideCaa(records: readonly CaaRecord[], hostname: string, ca: CaaAuthority): CaaDecision {
  const critical = records.filter(
    (record) => (record.flags & CAA_CRITICAL) !== 0 && !KNOWN_TAGS.has(record.tag.toLowerCase()),
  );
  if (critical.length > 0) return { allowed: false, why: 'critical', records: critical };
  const tagged = (tag: string) => records.filter((record) => record.tag.toLowerCase() === tag);
  const wild = hostname.startsWith('*.') ? tagged('issuewild') : [];
  const relevant = wild.length > 0 ? wild : tagged('issue');
  if (relevant.length === 0) return { allowed: true };
  const named = relevant.flatMap((record) => {
    const value = parseIssueValue(record.value);
    return value?.issuer === undefined
      ? []
      : [{ record, issuer: value.issuer, parameters: value.parameters }];
  });
  if (named.length === 0) return { allowed: false, why: 'nobody', records: relevant };
  // A CA that does not name itself cannot be matched: leave the decision to the CA, which
  // checks CAA itself before it issues, rather than refuse a name its records may well allow.
  if (ca.identities === undefined) return { allowed: true, unverified: true };
  const own = new Set(ca.identities.map((identity) => identity.toLowerCase()));
  const mine = named.filter((item) => own.has(item.issuer));
  if (mine.length === 0) return { allowed: false, why: 'other_ca', records: relevant };
  const forAccount = mine.filter((item) => {
    const account = item.parameters.get('accounturi');
    return account === undefined || ca.accountUri === undefined || account === ca.accountUri;
  });
  if (forAccount.length === 0) return { allowed: false, why: 'account', records: mine.map((i) => i.record) };
  const byMethod = forAccount.find((item) => {
    const methods = item.parameters.get('validationmethods');
    if (methods === undefined || ca.validationMethods === undefined) return true;
    const listed = methods.split(',').map((method) => method.trim().toLowerCase());
    return ca.validationMethods.some((method) => listed.includes(method));
  });
  if (byMethod === undefined) {
    return { allowed: false, why: 'method', records: forAccount.map((i) => i.record) };
  }
  return { allowed: true, by: byMethod.record };
}

const LABELS = /^[a-z0-9](?:-*[a-z0-9])*(?:\.[a-z0-9](?:-*[a-z0-9])*)*$/;
const PARAMETER = /^([a-z0-9](?:-*[a-z0-9])*)[ \t]*=[ \t]*([\x21-\x3a\x3c-\x7e]*)$/i;

/**
 * An `issue` or `issuewild` value (RFC 8659 section 4.2): `[issuer-domain-name] [; tag=value…]`.
 * `issuer` is undefined for an empty name (`;`: no CA). Undefined for a malformed value.
 */
function parseIssueValue(text: string): { issuer?: string; parameters: Map<string, string> } | undefined {
  const semicolon = text.indexOf(';');
  const issuer = (semicolon < 0 ? text : text.slice(0, semicolon)).trim().toLowerCase();
  if (issuer !== '' && !LABELS.test(issuer)) return undefined;
  const parameters = new Map<string, string>();
  if (semicolon >= 0) {
    for (const part of text.slice(semicolon + 1).split(';')) {
      const trimmed = part.trim();
      if (trimmed === '') continue;
      const match = PARAMETER.exec(trimmed);
      if (match === null) return undefined;
      parameters.set((match[1] ?? '').toLowerCase(), match[2] ?? '');
    }
  }
  return { issuer: issuer === '' ? undefined : issuer, parameters };
}
