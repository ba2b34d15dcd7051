import { randomInt } from 'node:crypto';
import { getServers } from 'node:dns';
import {
  type Answer,
  type DecodedPacket,
  encode,
  type OptAnswer,
  RECURSION_DESIRED,
  type TxtData,
} from 'dns-packet';
import { formatCaa } from './caa.js';
import {
  canonicalName,
  type ExtendedDnsError,
  type LookupFailure,
  type LookupOptions,
  type LookupResult,
  type RecordType,
  type Resolver,
} from './resolver.js';
import {
  type DnsServerAddress,
  formatServer,
  parseServer,
  QueryTimeout,
  tcpQuery,
  udpQuery,
} from './wire-transport.js';

export interface WireResolverOptions {
  /**
   * Recursive servers to ask, as `host:port` (`1.1.1.1:53`, `[2606:4700::1111]:53`;
   * the port defaults to 53). Hosts must be IP addresses: the resolver cannot
   * resolve its own servers. Default: the system's, from `dns.getServers()`.
   */
  servers?: readonly string[];
  /** How long one query waits for its answer, in ms. Default 2000. */
  timeoutMs?: number;
  /** How many times the whole server list is tried before giving up. Default 2. */
  attempts?: number;
  /** CNAMEs a lookup follows before reporting `cname_loop`. Default 8. */
  maxCnameChain?: number;
  /**
   * Ask each name's authoritative servers directly (recursion off) instead of
   * the recursive servers' answers, so that no cache, and above all no
   * negative cache (RFC 2308: up to the zone's SOA minimum, often an hour),
   * holds back a customer who has just created a record. The recursive
   * servers are still used to find the zone and its servers. Default false.
   */
  authoritative?: boolean;
  /** Port of authoritative servers. Default 53; tests point it at a loopback server. */
  authoritativePort?: number;
  /**
   * How long, in ms, authoritative mode remembers a name's zone and a zone's
   * server addresses, so the several lookups of one check find the zone once.
   * Records themselves are never cached. 0 disables. Default 60000.
   */
  delegationCacheMs?: number;
}

/**
 * A resolver speaking DNS on the wire (RFC 1035) through `dns-packet`, rather
 * than through the system's resolver (`node:dns`), so that it can report why a
 * lookup failed (SERVFAIL, REFUSED, timeout), see CNAME chains, and ask
 * authoritative servers directly.
 *
 * Each query goes out over UDP with EDNS(0) from a fresh socket (a fresh random
 * source port) with a random id; an answer is accepted only if its id and
 * question match, so stray or forged datagrams are ignored. A truncated answer
 * is asked again over TCP. Servers are tried in order, `attempts` times over;
 * the first NOERROR or NXDOMAIN answer wins. Safe for concurrent use; nothing
 * stays open between lookups.
 */
export class WireResolver implements Resolver {
  private readonly servers: readonly DnsServerAddress[];
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly maxCnameChain: number;
  private readonly authoritative: boolean;
  private readonly authoritativePort: number;
  private readonly zoneOfName: ExpiringMap<string>;
  private readonly serversOfZone: ExpiringMap<readonly DnsServerAddress[]>;

  constructor(options: WireResolverOptions = {}) {
    const servers = options.servers ?? getServers();
    if (servers.length === 0) throw new TypeError('WireResolver needs at least one DNS server');
    this.servers = servers.map((spec) => parseServer(spec));
    this.timeoutMs = positiveInteger('timeoutMs', options.timeoutMs ?? 2000);
    this.attempts = positiveInteger('attempts', options.attempts ?? 2);
    this.maxCnameChain = positiveInteger('maxCnameChain', options.maxCnameChain ?? 8);
    this.authoritative = options.authoritative ?? false;
    this.authoritativePort = positiveInteger('authoritativePort', options.authoritativePort ?? 53);
    const cacheMs = options.delegationCacheMs ?? 60_000;
    this.zoneOfName = new ExpiringMap(cacheMs);
    this.serversOfZone = new ExpiringMap(cacheMs);
  }

  async lookup(name: string, type: RecordType, opts: LookupOptions = {}): Promise<LookupResult> {
    const qname = validName(name);
    opts.signal?.throwIfAborted();
    const ctx: Context = { queries: 0, signal: opts.signal };
    const resolution = await this.resolve(qname, type, this.authoritative, ctx);
    return { name: qname, type, ...resolution, queries: ctx.queries };
  }

  /**
   * Resolves `name`, following its CNAME chain: first as far as each answer
   * carries it, then with a new query for the chain's end when a server
   * stopped at the edge of the data it holds.
   */
  private async resolve(
    name: string,
    type: RecordType,
    authoritative: boolean,
    ctx: Context,
  ): Promise<Resolution> {
    const chain: string[] = [];
    let current = name;
    for (;;) {
      const outcome = authoritative
        ? await this.askAuthorities(current, type, ctx)
        : await this.exchange(this.servers, { name: current, type }, true, ctx);
      if (!outcome.ok) {
        const { failure, server, extendedError } = outcome;
        return {
          values: [],
          cnameChain: chain,
          failure,
          server,
          ...(extendedError ? { extendedError } : {}),
        };
      }
      const { response, server } = outcome;
      const walk = walkAnswer(response.answers ?? [], current, type);
      for (const target of walk.chain) {
        if (target === name || chain.includes(target) || chain.length >= this.maxCnameChain) {
          return { values: [], cnameChain: [...chain, target], failure: 'cname_loop', server };
        }
        chain.push(target);
      }
      if (walk.values.length > 0) return { values: walk.values, cnameChain: chain, server };
      // The rcode describes the last name of the chain (RFC 6604).
      if (rcodeOf(response) === RCODE.NXDOMAIN) {
        return { values: [], cnameChain: chain, failure: 'nxdomain', server };
      }
      // NOERROR without the records is NODATA when it is about the name asked,
      // or when an SOA of the chain end's zone vouches for the chain's end
      // (RFC 2308). Otherwise the chain left the data the server holds and
      // the rest of it must be asked for.
      if (walk.owner === current || provesNoData(response, walk.owner)) {
        return { values: [], cnameChain: chain, failure: 'nodata', server };
      }
      current = walk.owner;
    }
  }

  /** Asks the authoritative servers of `name`'s zone, recursion off. */
  private async askAuthorities(name: string, type: RecordType, ctx: Context): Promise<Exchange> {
    let zone = this.zoneOfName.get(name);
    if (zone === undefined) {
      const found = await this.findZone(name, ctx);
      if (typeof found !== 'string') return found;
      this.zoneOfName.set(name, found);
      zone = found;
    }
    let servers = this.serversOfZone.get(zone);
    if (servers === undefined) {
      const found = await this.findNameServers(zone, ctx);
      if ('ok' in found) return found;
      this.serversOfZone.set(zone, found);
      servers = found;
    }
    return this.exchange(servers, { name, type }, false, ctx);
  }

  /**
   * Finds the zone that holds `name` by asking the recursive servers for its
   * SOA: either `name` is the zone's apex, or the negative answer carries the
   * zone's SOA in its authority section. Usually one query; walks up the name
   * when neither shows (a CNAME at the name, or an answer without an SOA).
   */
  private async findZone(name: string, ctx: Context): Promise<string | ExchangeFailure> {
    for (let candidate = name; ; candidate = parentOf(candidate)) {
      const outcome = await this.exchange(this.servers, { name: candidate, type: 'SOA' }, true, ctx);
      if (!outcome.ok) return outcome;
      const zone = zoneFromSoaAnswer(outcome.response, candidate);
      if (zone !== undefined) return zone;
      if (candidate === '') return { ok: false, failure: 'servfail', server: outcome.server };
    }
  }

  /** The IPv4 addresses of `zone`'s name servers: glue when given, else resolved. */
  private async findNameServers(
    zone: string,
    ctx: Context,
  ): Promise<readonly DnsServerAddress[] | ExchangeFailure> {
    const outcome = await this.exchange(this.servers, { name: zone, type: 'NS' }, true, ctx);
    if (!outcome.ok) return outcome;
    const { response, server } = outcome;
    const hosts = unique(
      (response.answers ?? []).flatMap((a) =>
        a.type === 'NS' && canonicalName(a.name) === zone ? [canonicalName(a.data)] : [],
      ),
    );
    const glue = response.additionals ?? [];
    const resolutions = await Promise.all(
      hosts.map(async (host): Promise<Resolution> => {
        const glued = glue.flatMap((a) => (a.type === 'A' && canonicalName(a.name) === host ? [a.data] : []));
        return glued.length > 0 ? { values: glued, cnameChain: [] } : this.resolve(host, 'A', false, ctx);
      }),
    );
    const addresses = unique(resolutions.flatMap((r) => r.values));
    if (addresses.length === 0) {
      // No server to ask: pass on why (say, a timeout resolving them), or,
      // for a zone without name servers, call it the server failure it is.
      const failed = resolutions.find((r) => isServerFailure(r.failure));
      const failure = failed?.failure;
      return {
        ok: false,
        failure: isServerFailure(failure) ? failure : 'servfail',
        server: failed?.server ?? server,
      };
    }
    return addresses.map((host) => ({ host, port: this.authoritativePort, family: 4 }));
  }

  /**
   * Asks `servers` in order, `attempts` rounds over, until one gives a usable
   * answer (NOERROR or NXDOMAIN). Answers and failures are data; only an
   * abort throws.
   */
  private async exchange(
    servers: readonly DnsServerAddress[],
    question: WireQuestion,
    recursionDesired: boolean,
    ctx: Context,
  ): Promise<Exchange> {
    let failed: ExchangeFailure = { ok: false, failure: 'timeout' };
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      for (const server of servers) {
        ctx.signal?.throwIfAborted();
        const outcome = await this.ask(server, question, recursionDesired, ctx);
        if (outcome.ok) return outcome;
        // A server's own error (SERVFAIL, REFUSED) tells more about the name
        // than another server's silence: report the first such error.
        if (failed.failure === 'timeout' || failed.failure === 'unreachable') failed = outcome;
      }
    }
    return failed;
  }

  /** One query to one server: UDP, then TCP if the UDP answer was truncated. */
  private async ask(
    server: DnsServerAddress,
    question: WireQuestion,
    recursionDesired: boolean,
    ctx: Context,
  ): Promise<Exchange> {
    const id = randomInt(0x10000);
    const message = encode({
      type: 'query',
      id,
      flags: recursionDesired ? RECURSION_DESIRED : 0,
      questions: [{ name: question.name, type: question.type, class: 'IN' }],
      additionals: [EDNS],
    });
    const accept = (packet: DecodedPacket) => isAnswerTo(packet, id, question);
    const label = formatServer(server);
    try {
      ctx.queries++;
      let response = await udpQuery(server, message, accept, this.timeoutMs, ctx.signal);
      if (response.flag_tc) {
        ctx.queries++;
        response = await tcpQuery(server, message, accept, this.timeoutMs, ctx.signal);
      }
      return judge(response, label, recursionDesired);
    } catch (error) {
      if (ctx.signal?.aborted) throw ctx.signal.reason;
      return { ok: false, failure: error instanceof QueryTimeout ? 'timeout' : 'unreachable', server: label };
    }
  }
}

/** What one lookup has spent, and its abort signal. */
interface Context {
  queries: number;
  signal: AbortSignal | undefined;
}

/** A lookup result before the lookup adds what it asked and what it cost. */
type Resolution = Pick<LookupResult, 'values' | 'cnameChain' | 'failure' | 'server' | 'extendedError'>;

interface WireQuestion {
  name: string;
  type: RecordType;
}

/** The failures a server or the network causes, as opposed to what DNS says about a name. */
type ServerFailure = Extract<LookupFailure, 'servfail' | 'refused' | 'timeout' | 'unreachable'>;
type ExchangeFailure = {
  ok: false;
  failure: ServerFailure;
  server?: string;
  extendedError?: ExtendedDnsError;
};
type Exchange = { ok: true; response: DecodedPacket; server: string } | ExchangeFailure;

function isServerFailure(failure: LookupFailure | undefined): failure is ServerFailure {
  return (
    failure === 'servfail' || failure === 'refused' || failure === 'timeout' || failure === 'unreachable'
  );
}

const RCODE = { NOERROR: 0, NXDOMAIN: 3, REFUSED: 5 } as const;

/**
 * EDNS(0) with a 1232-byte UDP payload (the DNS Flag Day 2020 figure: no IP
 * fragmentation on any path), so that answers larger than the 512 bytes of
 * plain DNS, such as long TXT sets, rarely need the TCP retry.
 */
const EDNS: OptAnswer = {
  type: 'OPT',
  name: '.',
  udpPayloadSize: 1232,
  extendedRcode: 0,
  ednsVersion: 0,
  flags: 0,
  flag_do: false,
  options: [],
};

function rcodeOf(packet: DecodedPacket): number {
  return (packet.flags ?? 0) & 0x0f;
}

/** Turns an answer into an exchange outcome: usable, or the server's failure. */
function judge(response: DecodedPacket, server: string, recursionDesired: boolean): Exchange {
  const rcode = rcodeOf(response);
  if (rcode !== RCODE.NOERROR && rcode !== RCODE.NXDOMAIN) {
    const failure = rcode === RCODE.REFUSED ? 'refused' : 'servfail';
    const extendedError = extendedErrorOf(response);
    return { ok: false, failure, server, ...(extendedError ? { extendedError } : {}) };
  }
  // An answer is evidence only from a server that looked the name up for us
  // or holds its zone. Anything else (a referral, a lame delegation, a
  // non-recursive server asked to recurse) says nothing about the name.
  const trusted = response.flag_aa || (recursionDesired && response.flag_ra);
  return trusted ? { ok: true, response, server } : { ok: false, failure: 'servfail', server };
}

/** EDNS option code of an Extended DNS Error (RFC 8914 section 2). */
const EDE_OPTION = 15;

/**
 * The first Extended DNS Error of a response's OPT record: two bytes of info-code, then UTF-8
 * text (RFC 8914 section 2), which may end in a NUL some servers add. A malformed option (under
 * two bytes) is ignored: it cannot say more than the rcode already does.
 */
function extendedErrorOf(response: DecodedPacket): ExtendedDnsError | undefined {
  for (const record of response.additionals ?? []) {
    if (record.type !== 'OPT') continue;
    // dns-packet's types list the option codes it encodes; it decodes any code into `data`.
    for (const option of record.options as readonly { code: number; data?: Buffer }[]) {
      if (option.code !== EDE_OPTION || option.data === undefined || option.data.length < 2) continue;
      const text = option.data.subarray(2).toString('utf8').replace(/\0+$/, '');
      return { infoCode: option.data.readUInt16BE(0), text };
    }
  }
  return undefined;
}

function isAnswerTo(packet: DecodedPacket, id: number, question: WireQuestion): boolean {
  const echoed = packet.questions;
  const first = echoed?.[0];
  return (
    packet.type === 'response' &&
    packet.id === id &&
    echoed?.length === 1 &&
    first !== undefined &&
    first.type === question.type &&
    (first.class ?? 'IN') === 'IN' &&
    canonicalName(first.name) === question.name
  );
}

/**
 * Follows the CNAMEs of an answer section from `qname`: `owner` is where the
 * chain ends in this answer, `chain` the targets on the way (repeats included,
 * so the caller sees loops), `values` the records of `type` at `owner`.
 */
function walkAnswer(
  answers: readonly Answer[],
  qname: string,
  type: RecordType,
): { owner: string; chain: string[]; values: string[] } {
  const chain: string[] = [];
  let owner = qname;
  // A chain cannot be longer than the answer holds records; the bound also
  // stops a looping answer.
  for (let hop = 0; hop <= answers.length; hop++) {
    const here = answers.filter((a) => canonicalName(a.name) === owner);
    const values = here.flatMap((a) => {
      const value = a.type === type ? recordValue(a) : undefined;
      return value === undefined ? [] : [value];
    });
    if (values.length > 0) return { owner, chain, values };
    const cname = here.find((a) => a.type === 'CNAME');
    if (cname?.type !== 'CNAME') break;
    owner = canonicalName(cname.data);
    chain.push(owner);
  }
  return { owner, chain, values: [] };
}

/** A record's value as LookupResult.values holds it; undefined for types Portico never asks for. */
function recordValue(answer: Answer): string | undefined {
  switch (answer.type) {
    case 'TXT':
      return txtValue(answer.data);
    case 'A':
    case 'AAAA':
    case 'CNAME':
    case 'NS':
      return canonicalName(answer.data);
    case 'SOA': {
      const { mname, rname, serial, refresh, retry, expire, minimum } = answer.data;
      return [canonicalName(mname), canonicalName(rname), serial, refresh, retry, expire, minimum].join(' ');
    }
    case 'CAA':
      return formatCaa({ flags: answer.data.flags ?? 0, tag: answer.data.tag, value: answer.data.value });
    default:
      return undefined;
  }
}

/**
 * One TXT record's value: its character-strings joined. They are joined as
 * bytes and decoded once, since a split may fall inside a UTF-8 sequence.
 */
function txtValue(data: TxtData): string {
  const parts = Array.isArray(data) ? data : [data];
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p))).toString('utf8');
}

function provesNoData(response: DecodedPacket, owner: string): boolean {
  return (response.authorities ?? []).some((a) => a.type === 'SOA' && isWithin(owner, canonicalName(a.name)));
}

/**
 * The zone an SOA answer for `candidate` reveals, if any: `candidate` itself
 * when it holds the SOA, else the owner of the SOA in the authority section of
 * a negative answer. Behind a CNAME, that SOA is the target's zone's, so it
 * does not count.
 */
function zoneFromSoaAnswer(response: DecodedPacket, candidate: string): string | undefined {
  const answers = response.answers ?? [];
  const here = answers.filter((a) => canonicalName(a.name) === candidate);
  if (here.some((a) => a.type === 'SOA')) return candidate;
  if (here.some((a) => a.type === 'CNAME')) return undefined;
  const soa = (response.authorities ?? []).find(
    (a) => a.type === 'SOA' && isWithin(candidate, canonicalName(a.name)),
  );
  return soa === undefined ? undefined : canonicalName(soa.name);
}

function isWithin(name: string, zone: string): boolean {
  return zone === '' || name === zone || name.endsWith(`.${zone}`);
}

function parentOf(name: string): string {
  const dot = name.indexOf('.');
  return dot < 0 ? '' : name.slice(dot + 1);
}

function validName(name: string): string {
  const canonical = canonicalName(name);
  const labels = canonical === '' ? [] : canonical.split('.');
  const ok =
    Buffer.byteLength(canonical) <= 253 &&
    labels.every((label) => label.length > 0 && Buffer.byteLength(label) <= 63);
  if (!ok) throw new TypeError(`"${name}" is not a valid DNS name`);
  return canonical;
}

function positiveInteger(option: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new TypeError(`WireResolver option ${option} must be a positive integer, got ${value}`);
  }
  return value;
}

function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}

/**
 * A map whose entries expire `ttlMs` after they are set, holding at most
 * `maxEntries` (the oldest go first), so a fleet-wide re-verification pass
 * cannot grow it without bound.
 */
class ExpiringMap<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > Date.now()) return entry.value;
    this.entries.delete(key);
    return undefined;
  }

  set(key: string, value: V): void {
    if (this.ttlMs <= 0) return;
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, expiresAt: Date.now() + this.ttlMs });
  }
}
