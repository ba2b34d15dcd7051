/**
 * The DNS resolver contract used by the ownership and routing checks.
 *
 * A resolver answers one question (name, type) and reports what it saw, or why
 * it saw nothing, as data rather than exceptions: a verification job has to
 * tell "the record is not there" (a definitive answer from DNS) from "DNS did
 * not answer" (try again later), and store both.
 */

/** The record types Portico asks about. */
export type RecordType = 'TXT' | 'CNAME' | 'A' | 'AAAA' | 'NS' | 'SOA' | 'CAA';

/**
 * Why a lookup produced no values.
 *
 * - `nxdomain`: the name (the last one of the CNAME chain, if any) does not exist.
 * - `nodata`: the name exists but holds no record of the requested type.
 * - `servfail`: a server answered SERVFAIL, another error code (FORMERR,
 *   NOTIMP…), or, when asking authoritative servers, answered without
 *   authority (a lame delegation), or no zone could be found for the name.
 * - `refused`: a server answered REFUSED.
 * - `timeout`: no server answered in time.
 * - `unreachable`: the network refused to reach the servers (ICMP port or host
 *   unreachable, TCP connection refused or reset).
 * - `cname_loop`: the CNAME chain loops or is longer than the resolver allows.
 *
 * `nxdomain`, `nodata` and `cname_loop` are statements by DNS about the name;
 * the others only say that no usable answer arrived.
 */
export type LookupFailure =
  | 'nxdomain'
  | 'nodata'
  | 'servfail'
  | 'refused'
  | 'timeout'
  | 'unreachable'
  | 'cname_loop';

export interface LookupResult {
  /** The name asked about: lowercase, without a trailing dot. */
  name: string;
  type: RecordType;
  /**
   * The records found, in answer order. TXT: the character-strings of each
   * record joined into one value (DNS splits long values into 255-byte
   * strings). CNAME: the target. A/AAAA: the address. NS: the host name.
   * SOA: `mname rname serial refresh retry expire minimum`. CAA: its presentation form,
   * `flags tag "value"` (RFC 8659 section 4.1.1; `"` and `\\` in the value escaped by `\\`),
   * which `parseCaa` of caa.ts reads back.
   * Names are lowercase, without a trailing dot.
   */
  values: string[];
  /**
   * The CNAME targets followed from `name` to the answer, in order; empty if
   * `name` holds the records itself. Present on failures too, so a check can
   * tell where a chain ended. A `CNAME` lookup does not follow the chain: its
   * value is the first target.
   */
  cnameChain: string[];
  /** Set exactly when `values` is empty. */
  failure?: LookupFailure;
  /**
   * The Extended DNS Error (RFC 8914, EDNS option 15) the server attached to the failing answer,
   * if it gave one: why a validating resolver said SERVFAIL (6: DNSSEC Bogus) or refused. Only on
   * `servfail` and `refused`; the failure applies to the chain's end (`cnameChain`'s last name).
   */
  extendedError?: ExtendedDnsError;
  /** The server (`host:port`) that gave the final answer, or failed last. */
  server?: string;
  /** DNS messages sent to obtain this result, TCP retries included. */
  queries: number;
}

/** An Extended DNS Error (RFC 8914): an IANA info-code and the server's free text ('' if none). */
export interface ExtendedDnsError {
  infoCode: number;
  text: string;
}

export interface LookupOptions {
  /** Aborting rejects the lookup with the signal's reason and closes its sockets. */
  signal?: AbortSignal;
}

export interface Resolver {
  /**
   * Looks up `name` (case and a trailing dot are ignored) for records of
   * `type`, following CNAMEs. Resolves with a failure for every DNS or network
   * outcome; rejects only on abort or on a name that is not a valid DNS name
   * (a caller's bug: names are normalized before they get here).
   */
  lookup(name: string, type: RecordType, opts?: LookupOptions): Promise<LookupResult>;
}

export interface Resolvers {
  /** For the ownership TXT: authoritative servers when PORTICO_DNS_AUTHORITATIVE is on. */
  ownership: Resolver;
  routing: Resolver;
}

/**
 * A DNS name in the form every comparison uses: lowercase, without the root's trailing dot
 * (`Shop.Acme.com.` → `shop.acme.com`; the root is ''). DNS compares names case-insensitively.
 */
export function canonicalName(name: string): string {
  return (name.endsWith('.') ? name.slice(0, -1) : name).toLowerCase();
}
