/**
 * The test DNS server's engine: UDP and TCP on 127.0.0.1, one random port for
 * both, answering from records the test sets and changes while it runs. Tests
 * do not use it directly: `dns-server.ts` runs it on a thread of its own.
 *
 * It answers like an authoritative server (AA set) that also claims recursion
 * (RA set), so it can stand in for both kinds:
 * - a name with records of the asked type: those records;
 * - a CNAME: the CNAME, then the target's records, following the chain while
 *   it stays in the question's zone (a zone is a name holding an SOA record;
 *   names under no such zone belong to the root zone);
 * - a name with no records at or below it: a wildcard's records (`*.{closest existing
 *   ancestor}`, RFC 4592) under the name asked, else NXDOMAIN, the zone's SOA in authority;
 * - a name with other records only (or only records below it): NODATA, that
 *   is NOERROR with an empty answer and the zone's SOA in authority;
 * - NS answers carry the A/AAAA records of the name servers it holds (glue).
 *
 * UDP answers larger than the client's EDNS payload size (512 bytes without
 * EDNS) come back truncated (TC), as do all UDP answers under the `truncate`
 * fault, so clients must retry over TCP.
 *
 * A zone can be delegated to another server (`delegate`): names under it are
 * answered by asking that server, as a recursive resolver follows a delegation,
 * both when asked directly and at the end of a CNAME chain that leads into it
 * (`_acme-challenge.shop.acme.test CNAME {label}.{challenge zone}`, with the
 * challenge zone delegated to Portico's dns role).
 */

import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import {
  type Answer,
  AUTHORITATIVE_ANSWER,
  type DecodedPacket,
  decode,
  encode,
  type OptAnswer,
  type Packet,
  RECURSION_AVAILABLE,
  RECURSION_DESIRED,
  TRUNCATED_RESPONSE,
} from 'dns-packet';
import { type DnsServerAddress, parseServer, tcpQuery, udpQuery } from '../../src/dns/wire-transport.js';

export type TestRecordType = 'A' | 'AAAA' | 'CNAME' | 'TXT' | 'NS' | 'SOA' | 'CAA';

/**
 * One record's value, as in a zone file: an address, a host name, for SOA
 * `mname rname`, for TXT a string or the list of the record's strings
 * (strings longer than 255 bytes are split, as DNS requires), for CAA
 * `flags tag "value"` (`0 issue "letsencrypt.org"`).
 */
export type TestRecordValue = string | readonly string[];

/**
 * - `servfail` / `refused`: answer with that rcode.
 * - `silence`: never answer (over UDP or TCP).
 * - `truncate`: set TC on every UDP answer; answer in full over TCP.
 * - `spoof`: before the real answer, send two forged NXDOMAIN answers, one
 *   with another id, one with another question.
 */
export type DnsFault = 'servfail' | 'refused' | 'silence' | 'truncate' | 'spoof' | ExtendedErrorFault;

/**
 * Answer with `rcode` and an Extended DNS Error (RFC 8914: EDNS option 15, the info-code and
 * `text`), as a validating resolver explains a SERVFAIL (6: DNSSEC Bogus). The option goes in the
 * answer's OPT record, so only queries with EDNS get it, as RFC 8914 section 3 says.
 */
export interface ExtendedErrorFault {
  rcode: 'servfail' | 'refused';
  infoCode: number;
  text?: string;
}

export interface ReceivedQuery {
  /** Lowercase, without a trailing dot. */
  name: string;
  type: string;
  transport: 'udp' | 'tcp';
  recursionDesired: boolean;
}

export interface ZoneOptions {
  /** Default `ns1.{zone}`. */
  nameServer?: string;
  /** The name server's A record. Default 127.0.0.1. */
  address?: string;
}

const HOST = '127.0.0.1';
const TTL = 60;
const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const EDNS_PAYLOAD_SIZE = 1232;

export class DnsResponder {
  readonly host = HOST;
  /** Every query received, in order, faulted ones included. */
  readonly queries: ReceivedQuery[] = [];

  private readonly records = new Map<string, Map<TestRecordType, TestRecordValue[]>>();
  private readonly faults = new Map<string, DnsFault>();
  private readonly delegations = new Map<string, DnsServerAddress>();
  private readonly connections = new Set<net.Socket>();
  private udp: dgram.Socket | undefined;
  private tcp: net.Server | undefined;
  private boundPort = 0;

  get port(): number {
    return this.boundPort;
  }

  /** `127.0.0.1:{port}`, as resolvers take it. */
  get address(): string {
    return `${HOST}:${this.boundPort}`;
  }

  get queryCount(): number {
    return this.queries.length;
  }

  /** Queries received for `name` (and `type`, if given). */
  queriesFor(name: string, type?: string): number {
    const wanted = canonical(name);
    return this.queries.filter((q) => q.name === wanted && (type === undefined || q.type === type)).length;
  }

  /** Forgets the queries received so far. */
  resetQueries(): void {
    this.queries.length = 0;
  }

  /** Replaces the records of `type` at `name`. */
  set(name: string, type: TestRecordType, values: TestRecordValue | readonly TestRecordValue[]): void {
    this.remove(name, type);
    this.add(name, type, values);
  }

  /**
   * Adds records of `type` at `name`. A string[] is a list of values, except
   * when given as the single value of a TXT record: `add(n, 'TXT', [['a', 'b']])`
   * is one record of two strings, `add(n, 'TXT', ['a', 'b'])` two records.
   */
  add(name: string, type: TestRecordType, values: TestRecordValue | readonly TestRecordValue[]): void {
    const list: readonly TestRecordValue[] = typeof values === 'string' ? [values] : values;
    for (const value of list) {
      if (typeof value !== 'string' && type !== 'TXT') {
        throw new TypeError(`only TXT records have several strings, not ${type} ${name}`);
      }
    }
    const key = canonical(name);
    const byType = this.records.get(key) ?? new Map<TestRecordType, TestRecordValue[]>();
    byType.set(type, [...(byType.get(type) ?? []), ...list]);
    this.records.set(key, byType);
  }

  /** Removes the records of `type` at `name`, or all its records. */
  remove(name: string, type?: TestRecordType): void {
    const key = canonical(name);
    const byType = this.records.get(key);
    if (byType === undefined) return;
    if (type === undefined) byType.clear();
    else byType.delete(type);
    if (byType.size === 0) this.records.delete(key);
  }

  /** Removes every record, fault and delegation; the query log stays. */
  clear(): void {
    this.records.clear();
    this.faults.clear();
    this.delegations.clear();
  }

  /**
   * Answers names under `zone` by asking the DNS server at `address` (`host:port`), over UDP and,
   * for a truncated answer, TCP; null ends the delegation. Its answers come back as they were, in
   * the answer and authority sections (a server that does not answer: SERVFAIL).
   */
  delegate(zone: string, address: string | null): void {
    if (address === null) this.delegations.delete(canonical(zone));
    else this.delegations.set(canonical(zone), parseServer(address));
  }

  /**
   * Makes `name` a zone: an SOA and an NS record at it, and an A record for
   * its name server, so resolvers can find and reach the zone's server.
   */
  zone(name: string, options: ZoneOptions = {}): void {
    const zone = canonical(name);
    const nameServer = canonical(options.nameServer ?? `ns1.${zone}`);
    this.set(zone, 'SOA', `${nameServer} hostmaster.${zone}`);
    this.set(zone, 'NS', nameServer);
    this.set(nameServer, 'A', options.address ?? HOST);
  }

  /**
   * Injects a fault for queries about `name` (of `type` only, if given), or
   * about any name with '*'; null lifts it. The most specific fault applies.
   */
  fault(name: string, fault: DnsFault | null, type?: TestRecordType): void {
    const key = faultKey(name === '*' ? '*' : canonical(name), type);
    if (fault === null) this.faults.delete(key);
    else this.faults.set(key, fault);
  }

  async listen(): Promise<void> {
    // UDP picks a free port; TCP then takes the same one, which another
    // process may hold: start over with a new port when it does.
    for (let attempt = 0; ; attempt++) {
      const udp = dgram.createSocket('udp4');
      udp.on('message', (message, peer) => this.onDatagram(udp, message, peer));
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(0, HOST, () => {
          udp.off('error', reject);
          resolve();
        });
      });
      const port = udp.address().port;
      const tcp = net.createServer((socket) => this.onConnection(socket));
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen(port, HOST, () => {
            tcp.off('error', reject);
            resolve();
          });
        });
      } catch (error) {
        await new Promise<void>((resolve) => udp.close(() => resolve()));
        if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < 20) continue;
        throw error;
      }
      this.udp = udp;
      this.tcp = tcp;
      this.boundPort = port;
      return;
    }
  }

  async close(): Promise<void> {
    for (const socket of this.connections) socket.destroy();
    const { udp, tcp } = this;
    await Promise.all([
      udp && new Promise<void>((resolve) => udp.close(() => resolve())),
      tcp && new Promise<void>((resolve) => tcp.close(() => resolve())),
    ]);
  }

  private onDatagram(udp: dgram.Socket, message: Buffer, peer: dgram.RemoteInfo): void {
    const query = decodeOrUndefined(message);
    if (query === undefined || query.type !== 'query') return;
    const limit = Math.max(512, ednsOf(query)?.udpPayloadSize ?? 512);
    const truncateAll = this.faultFor(query) === 'truncate';
    void this.answer(query, 'udp').then((responses) =>
      this.sendDatagrams(udp, peer, responses, limit, truncateAll),
    );
  }

  private sendDatagrams(
    udp: dgram.Socket,
    peer: dgram.RemoteInfo,
    responses: Packet[],
    limit: number,
    truncateAll: boolean,
  ): void {
    for (const response of responses) {
      let wire = encode(response);
      if (truncateAll || wire.length > limit) {
        wire = encode({
          ...response,
          flags: (response.flags ?? 0) | TRUNCATED_RESPONSE,
          answers: [],
          authorities: [],
          additionals: (response.additionals ?? []).filter((a) => a.type === 'OPT'),
        });
      }
      try {
        udp.send(wire, peer.port, peer.address);
      } catch {
        // Closed while a delegated zone's server was being asked: the client is gone with it.
      }
    }
  }

  private onConnection(socket: net.Socket): void {
    this.connections.add(socket);
    socket.on('close', () => this.connections.delete(socket));
    // Clients drop connections as soon as they have their answer.
    socket.on('error', () => socket.destroy());
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2) {
        const end = 2 + pending.readUInt16BE(0);
        if (pending.length < end) return;
        const query = decodeOrUndefined(pending.subarray(2, end));
        pending = pending.subarray(end);
        if (query === undefined || query.type !== 'query') continue;
        void this.answer(query, 'tcp').then((responses) => {
          for (const response of responses) {
            const wire = encode(response);
            const length = Buffer.alloc(2);
            length.writeUInt16BE(wire.length);
            if (!socket.destroyed) socket.write(Buffer.concat([length, wire]));
          }
        });
      }
    });
  }

  /**
   * The messages to send back for `query`, in order; none for silence. The query is logged before
   * anything is awaited, so `queries` counts it as soon as it is received.
   */
  private async answer(query: DecodedPacket, transport: ReceivedQuery['transport']): Promise<Packet[]> {
    const question = query.questions?.[0];
    if (question !== undefined) {
      this.record({
        name: canonical(question.name),
        type: question.type,
        transport,
        recursionDesired: query.flag_rd,
      });
    }
    const edns = ednsOf(query);
    const reply = (rcode: number, sections: Sections = {}, options: OptAnswer['options'] = []): Packet => ({
      type: 'response',
      id: query.id ?? 0,
      flags: AUTHORITATIVE_ANSWER | RECURSION_AVAILABLE | ((query.flags ?? 0) & RECURSION_DESIRED) | rcode,
      questions: query.questions ?? [],
      answers: sections.answers ?? [],
      authorities: sections.authorities ?? [],
      additionals: [
        ...(sections.additionals ?? []),
        ...(edns ? [{ ...edns, udpPayloadSize: EDNS_PAYLOAD_SIZE, options }] : []),
      ],
    });
    // Opcode bits 11-14: only standard queries with one question are served.
    if (question === undefined || query.questions?.length !== 1) return [reply(RCODE.FORMERR)];
    if ((((query.flags ?? 0) >> 11) & 0xf) !== 0) return [reply(RCODE.NOTIMP)];
    const fault = this.faultFor(query);
    if (typeof fault === 'object') {
      const rcode = fault.rcode === 'servfail' ? RCODE.SERVFAIL : RCODE.REFUSED;
      return [reply(rcode, {}, [extendedErrorOption(fault.infoCode, fault.text ?? '')])];
    }
    switch (fault) {
      case 'silence':
        return [];
      case 'servfail':
        return [reply(RCODE.SERVFAIL)];
      case 'refused':
        return [reply(RCODE.REFUSED)];
      case 'spoof': {
        const real = await this.lookup(canonical(question.name), question.type);
        const forged = reply(RCODE.NXDOMAIN);
        return [
          { ...forged, id: ((query.id ?? 0) + 1) & 0xffff },
          { ...forged, questions: [{ ...question, name: `spoofed.${question.name}` }] },
          reply(real.rcode, real),
        ];
      }
      default: {
        const real = await this.lookup(canonical(question.name), question.type);
        return [reply(real.rcode, real)];
      }
    }
  }

  private async lookup(qname: string, type: string): Promise<Sections & { rcode: number }> {
    if (this.delegationOf(qname)) return this.forward(qname, type, []);
    const answers: Answer[] = [];
    const zone = this.zoneOf(qname);
    const visited = new Set<string>();
    for (let owner = qname; ; ) {
      visited.add(owner);
      let byType = this.records.get(owner);
      if (byType === undefined && !this.hasDescendants(owner)) {
        // A name that does not exist is answered by a wildcard at its closest encloser, if any
        // (RFC 4592), under the name asked.
        byType = this.wildcardFor(owner);
        if (byType === undefined) {
          return { rcode: RCODE.NXDOMAIN, answers, authorities: [this.soaFor(owner)] };
        }
      }
      const matching = isTestRecordType(type) ? (byType?.get(type) ?? []) : [];
      if (isTestRecordType(type) && matching.length > 0) {
        const found = matching.map((value) => toAnswer(owner, type, value));
        return { rcode: RCODE.NOERROR, answers: [...answers, ...found], additionals: this.glueFor(found) };
      }
      const target = type === 'CNAME' ? undefined : byType?.get('CNAME')?.[0];
      if (typeof target !== 'string') {
        return { rcode: RCODE.NOERROR, answers, authorities: [this.soaFor(owner)] };
      }
      answers.push(toAnswer(owner, 'CNAME', target));
      const next = canonical(target);
      // Into a delegated zone: asked of its server, as a recursive resolver would.
      if (this.delegationOf(next)) return this.forward(next, type, answers);
      // Like a server answering from the question's zone only: a chain that
      // leaves it, or loops, ends here and the client asks on.
      if (visited.has(next) || this.zoneOf(next) !== zone) return { rcode: RCODE.NOERROR, answers };
      owner = next;
    }
  }

  /** The server of the delegated zone `name` is in, if any. */
  private delegationOf(name: string): DnsServerAddress | undefined {
    for (let candidate = name; candidate !== ''; candidate = parentOf(candidate)) {
      const server = this.delegations.get(candidate);
      if (server) return server;
    }
    return undefined;
  }

  /** `name`'s records of `type`, asked of its zone's server, after the `before` records of a chain. */
  private async forward(name: string, type: string, before: Answer[]): Promise<Sections & { rcode: number }> {
    const server = this.delegationOf(name) as DnsServerAddress;
    const id = randomInt(0x10000);
    const message = encode({ type: 'query', id, questions: [{ name, type: type as 'TXT', class: 'IN' }] });
    const accept = (packet: DecodedPacket) => packet.id === id && packet.type === 'response';
    try {
      let answer = await udpQuery(server, message, accept, 2000, undefined);
      if (answer.flag_tc) answer = await tcpQuery(server, message, accept, 2000, undefined);
      const rcode = RCODE[(answer as unknown as { rcode: keyof typeof RCODE }).rcode] ?? RCODE.SERVFAIL;
      return {
        rcode,
        answers: [...before, ...(answer.answers ?? [])],
        authorities: answer.authorities ?? [],
      };
    } catch {
      return { rcode: RCODE.SERVFAIL, answers: before };
    }
  }

  /**
   * The records of the wildcard `*.{closest encloser}` for a name that does not exist: the closest
   * encloser is its nearest ancestor that exists (RFC 4592 section 3.3.1), so `a.b.acme.com` is
   * answered by `*.acme.com` when `b.acme.com` does not exist, as real servers answer it.
   */
  private wildcardFor(name: string): Map<TestRecordType, TestRecordValue[]> | undefined {
    for (let encloser = parentOf(name); ; encloser = parentOf(encloser)) {
      // A wildcard child makes its parent exist: the first one found is at the closest encloser.
      const wildcard = this.records.get(encloser === '' ? '*' : `*.${encloser}`);
      if (wildcard !== undefined) return wildcard;
      if (encloser === '' || this.records.has(encloser) || this.hasDescendants(encloser)) return undefined;
    }
  }

  private hasDescendants(name: string): boolean {
    const suffix = `.${name}`;
    for (const owner of this.records.keys()) {
      if (name === '' || owner.endsWith(suffix)) return true;
    }
    return false;
  }

  /** The closest name at or above `name` holding an SOA record; '' (the root) if none. */
  private zoneOf(name: string): string {
    for (let candidate = name; ; candidate = parentOf(candidate)) {
      if (this.records.get(candidate)?.has('SOA') || candidate === '') return candidate;
    }
  }

  private soaFor(name: string): Answer {
    const zone = this.zoneOf(name);
    const value = this.records.get(zone)?.get('SOA')?.[0];
    return toAnswer(zone, 'SOA', typeof value === 'string' ? value : 'ns.invalid hostmaster.invalid');
  }

  private glueFor(answers: readonly Answer[]): Answer[] {
    return answers.flatMap((answer) => {
      if (answer.type !== 'NS') return [];
      const host = canonical(answer.data);
      const byType = this.records.get(host);
      return (['A', 'AAAA'] as const).flatMap((type) =>
        (byType?.get(type) ?? []).map((value) => toAnswer(host, type, value)),
      );
    });
  }

  private faultFor(query: DecodedPacket): DnsFault | undefined {
    const question = query.questions?.[0];
    if (question === undefined) return this.faults.get('*');
    const name = canonical(question.name);
    return (
      this.faults.get(faultKey(name, question.type)) ??
      this.faults.get(faultKey(name)) ??
      this.faults.get('*')
    );
  }

  private record(query: ReceivedQuery): void {
    this.queries.push(query);
  }
}

interface Sections {
  answers?: Answer[];
  authorities?: Answer[];
  additionals?: Answer[];
}

function toAnswer(name: string, type: TestRecordType, value: TestRecordValue): Answer {
  const base = { name, ttl: TTL, class: 'IN' as const };
  if (type === 'TXT') {
    // dns-packet writes each string's length in one byte, and converts the
    // array it is given in place: hand it fresh buffers of at most 255 bytes.
    const strings = typeof value === 'string' ? [value] : value;
    return { ...base, type, data: strings.flatMap((s) => chunks(Buffer.from(s), 255)) };
  }
  const text = typeof value === 'string' ? value : value.join('');
  if (type === 'CAA') {
    const match = /^(\d+)\s+([A-Za-z0-9]+)\s+"(.*)"$/.exec(text);
    if (match === null) throw new TypeError(`a CAA record is \`flags tag "value"\`, not ${text}`);
    const [, flags = '0', tag = '', value = ''] = match;
    // dns-packet's types list three tags; the wire format takes any.
    return { ...base, type, data: { flags: Number(flags), tag: tag as 'issue', value } };
  }
  if (type === 'SOA') {
    const [mname = '', rname = ''] = text.split(/\s+/);
    const data = { mname, rname, serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: 60 };
    return { ...base, type, data };
  }
  return { ...base, type, data: text };
}

function chunks(bytes: Buffer, size: number): Buffer[] {
  const parts: Buffer[] = [];
  for (let start = 0; start < bytes.length; start += size) parts.push(bytes.subarray(start, start + size));
  return parts.length > 0 ? parts : [Buffer.alloc(0)];
}

/** EDNS option 15 (RFC 8914 section 2): the info-code in two bytes, then UTF-8 text. */
function extendedErrorOption(infoCode: number, text: string): OptAnswer['options'][number] {
  const data = Buffer.concat([Buffer.alloc(2), Buffer.from(text, 'utf8')]);
  data.writeUInt16BE(infoCode, 0);
  // dns-packet's types list the option codes it encodes itself; it writes any code's `data` as is.
  return { code: 15, data } as unknown as OptAnswer['options'][number];
}

function ednsOf(query: DecodedPacket): OptAnswer | undefined {
  return query.additionals?.find((a): a is OptAnswer => a.type === 'OPT');
}

const TEST_RECORD_TYPES: readonly string[] = [
  'A',
  'AAAA',
  'CNAME',
  'TXT',
  'NS',
  'SOA',
  'CAA',
] satisfies TestRecordType[];

function isTestRecordType(type: string): type is TestRecordType {
  return TEST_RECORD_TYPES.includes(type);
}

function faultKey(name: string, type?: string): string {
  return type === undefined ? name : `${name} ${type}`;
}

function canonical(name: string): string {
  return (name.endsWith('.') ? name.slice(0, -1) : name).toLowerCase();
}

function parentOf(name: string): string {
  const dot = name.indexOf('.');
  return dot < 0 ? '' : name.slice(dot + 1);
}

function decodeOrUndefined(message: Buffer): DecodedPacket | undefined {
  try {
    return decode(message);
  } catch {
    return undefined;
  }
}
