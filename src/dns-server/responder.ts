import {
  type Answer,
  AUTHORITATIVE_ANSWER,
  CHECKING_DISABLED,
  type DecodedPacket,
  decode,
  encode,
  type OptAnswer,
  RECURSION_DESIRED,
  TRUNCATED_RESPONSE,
} from 'dns-packet';
import { HEADER_LENGTH, lowercaseLabel, questionBytes, relativeTo, withQuestion } from './question.js';
import { type ChallengeZone, TTL } from './zone.js';

/**
 * The answer to one DNS message, for the challenge zone: authoritative (AA), never recursive (RA
 * clear), from the zone's fixed records and the challenge TXT records `values(label)` reads.
 *
 * | query | answer |
 * |---|---|
 * | not a query (a response), or shorter than a header | none (answering responses would let two servers bounce a packet forever) |
 * | undecodable, no single question, two OPT records | FORMERR |
 * | opcode other than QUERY (NOTIFY, UPDATE, …) | NOTIMP |
 * | EDNS version above 0 | BADVERS (RFC 6891 6.1.3) |
 * | a name outside the zone, a class other than IN, a zone transfer | REFUSED, not authoritative |
 * | the apex: SOA, NS (with the default name server's address) | the records |
 * | `{label}.{zone}` with challenge values: TXT | every value, one record each |
 * | a name that exists, another type | NODATA: NOERROR, no answer, the SOA in authority |
 * | a name that does not exist | NXDOMAIN, the SOA in authority |
 * | the store failing | SERVFAIL, so resolvers try another node or later, and cache nothing |
 *
 * A question of type ANY gets every record at the name. The question is echoed byte for byte.
 * With EDNS the answer carries an OPT record with this server's UDP payload size; over UDP an
 * answer larger than the client's size (512 bytes without EDNS) is sent truncated (TC), with no
 * records, for the client to ask again over TCP.
 */

/** The challenge TXT values at one label of the zone, whoever wrote them (DnsChallengeStore). */
export type ChallengeValues = (label: string) => Promise<string[]>;

export type Transport = 'udp' | 'tcp';

/** Largest UDP answer this server sends, and what its OPT record says: the DNS flag day 2020 value. */
export const UDP_PAYLOAD_SIZE = 1232;
/** Without EDNS, UDP answers are at most 512 bytes (RFC 1035 4.2.1). */
const CLASSIC_UDP_SIZE = 512;
/** TCP messages carry a two-byte length. */
const TCP_MAX = 65535;

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
/** BADVERS is 16: its upper eight bits go in the OPT record, the lower four (0) in the header. */
const BADVERS_EXTENDED = 1;
const OPCODE_MASK = 0xf << 11;
/** Types that ask for a zone transfer, which this server does not do: every node reads the store. */
const TRANSFERS = new Set(['AXFR', 'IXFR']);
/** The labels of the store's challenge records: what `challengeLabel` and the like make. */
const STORE_LABEL = /^[a-z0-9_-]{1,63}$/;

interface Reply {
  rcode: number;
  authoritative: boolean;
  answers?: Answer[];
  authorities?: Answer[];
  additionals?: Answer[];
  /** BADVERS instead of the header's rcode. */
  extendedRcode?: number;
}

export class Responder {
  private readonly zoneLabels: Buffer[];

  constructor(
    private readonly zone: ChallengeZone,
    private readonly values: ChallengeValues,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.zoneLabels = zone.name.split('.').map((label) => Buffer.from(label, 'latin1'));
  }

  /** The bytes to send back for `message`, or undefined to send nothing. Never throws. */
  async respond(message: Buffer, transport: Transport): Promise<Buffer | undefined> {
    if (message.length < HEADER_LENGTH) return undefined;
    // QR set: a response, not a query. Answering would let a forged one loop between servers.
    if (((message[2] as number) & 0x80) !== 0) return undefined;
    let query: DecodedPacket;
    try {
      query = decode(message);
    } catch {
      return this.headerOnly(message, RCODE.FORMERR);
    }
    const flags = query.flags ?? 0;
    if ((flags & OPCODE_MASK) !== 0) return this.headerOnly(message, RCODE.NOTIMP, query);
    const question = query.questions?.[0];
    const asked = questionBytes(message);
    const opts = (query.additionals ?? []).filter((record): record is OptAnswer => record.type === 'OPT');
    if (query.questions?.length !== 1 || question === undefined || asked === undefined || opts.length > 1) {
      return this.headerOnly(message, RCODE.FORMERR, query);
    }
    const edns = opts[0];
    let reply: Reply;
    if (edns !== undefined && edns.ednsVersion > 0) {
      reply = { rcode: RCODE.NOERROR, authoritative: false, extendedRcode: BADVERS_EXTENDED };
    } else {
      try {
        reply = await this.lookup(asked.labels, question.type, question.class ?? 'IN');
      } catch {
        // The store is unreachable or failing: nothing is known, so nothing may be cached either.
        reply = { rcode: RCODE.SERVFAIL, authoritative: false };
      }
    }
    const limit =
      transport === 'tcp'
        ? TCP_MAX
        : edns === undefined
          ? CLASSIC_UDP_SIZE
          : Math.min(UDP_PAYLOAD_SIZE, Math.max(CLASSIC_UDP_SIZE, edns.udpPayloadSize));
    return this.encode(query, asked.bytes, edns, reply, limit);
  }

  private async lookup(labels: readonly Buffer[], type: string, klass: string): Promise<Reply> {
    const relative = relativeTo(labels.map(lowercaseLabel), this.zoneLabels);
    if (relative === undefined || (klass !== 'IN' && klass !== 'ANY') || TRANSFERS.has(type)) {
      return { rcode: RCODE.REFUSED, authoritative: false };
    }
    const now = this.now();
    const negative = (rcode: number): Reply => ({
      rcode,
      authoritative: true,
      authorities: [this.zone.soa(now, TTL.negative)],
    });
    const wants = (recordType: string) => type === recordType || type === 'ANY';
    // Records are owned by the name as asked, in its case: some resolvers that randomize the case of
    // their questions (DNS 0x20) compare the answer's names with it too.
    const asked = labels.map((label) => label.toString('latin1')).join('.');
    if (relative.length === 0) {
      const answers: Answer[] = [];
      if (wants('SOA')) answers.push({ ...this.zone.soa(now), name: asked });
      if (wants('NS')) answers.push(...this.nameserverRecords(asked));
      if (answers.length === 0) return negative(RCODE.NOERROR);
      // The default name server's address, so a resolver asking for NS needs no second query.
      const additionals = wants('NS') ? [...this.zone.addresses.values()].flat() : [];
      return { rcode: RCODE.NOERROR, authoritative: true, answers, additionals };
    }
    const owner = relative.map((label) => label.toString('latin1')).join('.');
    const records: Answer[] = (this.zone.addresses.get(`${owner}.${this.zone.name}`) ?? []).map((record) => ({
      ...record,
      name: asked,
    }));
    if (relative.length === 1 && STORE_LABEL.test(owner)) {
      for (const value of await this.values(owner)) records.push(txtRecord(asked, value));
    }
    if (records.length === 0) return negative(RCODE.NXDOMAIN);
    const answers = records.filter((record) => wants(record.type));
    return answers.length === 0
      ? negative(RCODE.NOERROR)
      : { rcode: RCODE.NOERROR, authoritative: true, answers };
  }

  private nameserverRecords(owner: string): Answer[] {
    return this.zone.nameservers.map((server) => ({
      name: owner,
      type: 'NS' as const,
      class: 'IN' as const,
      ttl: TTL.apex,
      data: server,
    }));
  }

  /**
   * The reply as bytes: the header from the query (id, RD and CD copied; AA as the reply says; RA
   * never), the question as asked, the sections, the OPT record when the query had one; truncated
   * to the question and OPT when larger than `limit`.
   */
  private encode(
    query: DecodedPacket,
    question: Buffer,
    edns: OptAnswer | undefined,
    reply: Reply,
    limit: number,
  ): Buffer {
    const flags =
      ((query.flags ?? 0) & (RECURSION_DESIRED | CHECKING_DISABLED)) |
      (reply.authoritative ? AUTHORITATIVE_ANSWER : 0) |
      reply.rcode;
    const opt: Answer[] = edns === undefined ? [] : [this.optRecord(edns, reply.extendedRcode ?? 0)];
    const full = withQuestion(
      encode({
        type: 'response',
        id: query.id ?? 0,
        flags,
        answers: reply.answers ?? [],
        authorities: reply.authorities ?? [],
        additionals: [...(reply.additionals ?? []), ...opt],
      }),
      question,
    );
    if (full.length <= limit) return full;
    return withQuestion(
      encode({ type: 'response', id: query.id ?? 0, flags: flags | TRUNCATED_RESPONSE, additionals: opt }),
      question,
    );
  }

  /** This server's OPT record: its UDP payload size, version 0, the query's DO bit (RFC 3225), no options. */
  private optRecord(edns: OptAnswer, extendedRcode: number): OptAnswer {
    return {
      name: '.',
      type: 'OPT',
      udpPayloadSize: UDP_PAYLOAD_SIZE,
      extendedRcode,
      ednsVersion: 0,
      flags: edns.flags & 0x8000,
      flag_do: edns.flag_do,
      options: [],
    };
  }

  /**
   * An answer of a header alone, for a query that cannot be answered as asked: the id, opcode and
   * RD bit from the query's header bytes (all a malformed message may have that is readable).
   */
  private headerOnly(message: Buffer, rcode: number, query?: DecodedPacket): Buffer {
    const received = message.readUInt16BE(2);
    const flags = (received & (OPCODE_MASK | RECURSION_DESIRED)) | rcode;
    const edns = query?.additionals?.find((record): record is OptAnswer => record.type === 'OPT');
    return encode({
      type: 'response',
      id: message.readUInt16BE(0),
      flags,
      additionals: edns === undefined ? [] : [this.optRecord(edns, 0)],
    });
  }
}

/** One TXT record of one value, split into strings of at most 255 bytes as DNS requires. */
function txtRecord(name: string, value: string): Answer {
  const bytes = Buffer.from(value, 'utf8');
  const strings: Buffer[] = [];
  for (let start = 0; start < bytes.length; start += 255) strings.push(bytes.subarray(start, start + 255));
  return {
    name,
    type: 'TXT',
    class: 'IN',
    ttl: TTL.challenge,
    data: strings.length > 0 ? strings : [Buffer.alloc(0)],
  };
}
