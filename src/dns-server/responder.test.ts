import {
  type Answer,
  type DecodedPacket,
  decode,
  encode,
  type OptAnswer,
  type Packet,
  RECURSION_DESIRED,
  type SoaAnswer,
} from 'dns-packet';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ChallengeValues, Responder, type Transport } from './responder.js';
import { challengeZone, TTL } from './zone.js';

/**
 * The responder on its own: messages in, messages out, with the challenge values in a Map instead
 * of the store (the store-backed role, over real sockets, is test/integration/dns-server/). Every
 * answer is decoded again with dns-packet, as a client would read it.
 */

const ZONE = 'acme.platform.test';
const NOW = new Date('2026-03-01T12:00:00Z');
const records = new Map<string, string[]>([
  ['pfps5gmh765xiuylj73f', ['value-for-acme-com', 'value-for-wildcard-acme-com']],
  ['aaaaaaaaaaaaaaaaaaaa', ['x'.repeat(300)]],
]);
const fromMap: ChallengeValues = async (label) => records.get(label) ?? [];

function responder(values: ChallengeValues = fromMap, nameservers: string[] = []): Responder {
  return new Responder(
    challengeZone({ zone: ZONE, nameservers, listenHost: '127.0.0.1' }),
    values,
    () => NOW,
  );
}

interface Ask {
  name: string;
  type?: string;
  klass?: string;
  id?: number;
  flags?: number;
  /** EDNS: the client's UDP payload size; undefined: no OPT record. */
  edns?: number;
  ednsVersion?: number;
  transport?: Transport;
}

function query({
  name,
  type = 'TXT',
  klass = 'IN',
  id = 4242,
  flags = RECURSION_DESIRED,
  edns,
  ednsVersion = 0,
}: Ask) {
  const packet: Packet = {
    type: 'query',
    id,
    flags,
    questions: [{ name, type: type as 'TXT', class: klass as 'IN' }],
    additionals:
      edns === undefined
        ? []
        : [
            {
              name: '.',
              type: 'OPT',
              udpPayloadSize: edns,
              ednsVersion,
              flags: 0,
              options: [],
            } as unknown as OptAnswer,
          ],
  };
  return encode(packet);
}

async function ask(options: Ask, server = responder()): Promise<{ packet: DecodedPacket; bytes: Buffer }> {
  const bytes = await server.respond(query(options), options.transport ?? 'udp');
  if (bytes === undefined) throw new Error('no answer');
  return { packet: decode(bytes), bytes };
}

/** The answer section's records, none of them OPT (which lives in the additional section). */
type DataRecord = Exclude<Answer, OptAnswer>;
const answersOf = (packet: DecodedPacket) => (packet.answers ?? []) as DataRecord[];
const rcodeOf = (packet: DecodedPacket) => (packet as unknown as { rcode: string }).rcode;
const txtValues = (answers: Answer[] | undefined) =>
  (answers ?? []).map((answer) =>
    answer.type === 'TXT'
      ? Buffer.concat((answer.data as Buffer[]).map((s) => Buffer.from(s))).toString()
      : '',
  );
const optOf = (packet: DecodedPacket) =>
  packet.additionals?.find((record): record is OptAnswer => record.type === 'OPT');

describe('the apex', () => {
  it('answers SOA authoritatively, without recursion, with a serial of the time in seconds', async () => {
    const { packet } = await ask({ name: ZONE, type: 'SOA' });
    expect(rcodeOf(packet)).toBe('NOERROR');
    expect(packet.flag_aa).toBe(true);
    expect(packet.flag_ra).toBe(false);
    // RD is copied from the query, and means nothing here.
    expect(packet.flag_rd).toBe(true);
    expect(packet.answers).toHaveLength(1);
    const soa = packet.answers?.[0] as SoaAnswer;
    expect(soa).toMatchObject({ name: ZONE, type: 'SOA', ttl: TTL.apex });
    expect(soa.data).toMatchObject({
      mname: `ns.${ZONE}`,
      rname: `hostmaster.${ZONE}`,
      serial: Math.floor(NOW.getTime() / 1000),
      minimum: TTL.negative,
    });
  });

  it('answers NS with the default name server and its address (the listen address)', async () => {
    const { packet } = await ask({ name: ZONE, type: 'NS' });
    expect(packet.answers).toEqual([expect.objectContaining({ name: ZONE, type: 'NS', data: `ns.${ZONE}` })]);
    expect(packet.additionals).toEqual([
      expect.objectContaining({ name: `ns.${ZONE}`, type: 'A', data: '127.0.0.1' }),
    ]);
    const address = await ask({ name: `ns.${ZONE}`, type: 'A' });
    expect(address.packet.answers).toEqual([expect.objectContaining({ type: 'A', data: '127.0.0.1' })]);
  });

  it('answers NS with the configured name servers, and no address of its own for them', async () => {
    const server = responder(fromMap, ['ns1.platform.test', 'ns2.platform.test']);
    const { packet } = await ask({ name: ZONE, type: 'NS' }, server);
    expect(answersOf(packet).map((answer) => answer.data)).toEqual([
      'ns1.platform.test',
      'ns2.platform.test',
    ]);
    expect(packet.additionals).toEqual([]);
    const soa = await ask({ name: ZONE, type: 'SOA' }, server);
    expect((answersOf(soa.packet)[0] as SoaAnswer).data.mname).toBe('ns1.platform.test');
    expect(rcodeOf((await ask({ name: `ns.${ZONE}`, type: 'A' }, server)).packet)).toBe('NXDOMAIN');
  });

  it('answers other types at the apex with NODATA: no answer, the SOA in authority with the negative TTL', async () => {
    for (const type of ['A', 'AAAA', 'TXT', 'MX', 'CAA']) {
      const { packet } = await ask({ name: ZONE, type });
      expect(rcodeOf(packet)).toBe('NOERROR');
      expect(packet.flag_aa).toBe(true);
      expect(packet.answers).toEqual([]);
      expect(packet.authorities).toEqual([
        expect.objectContaining({ type: 'SOA', name: ZONE, ttl: TTL.negative }),
      ]);
    }
  });

  it('answers ANY with every record at the name', async () => {
    const { packet } = await ask({ name: ZONE, type: 'ANY' });
    expect(packet.answers?.map((answer) => answer.type).sort()).toEqual(['NS', 'SOA']);
  });
});

describe('challenge records', () => {
  it('answers every TXT value at a label, one record each, with the challenge TTL', async () => {
    const { packet } = await ask({ name: `pfps5gmh765xiuylj73f.${ZONE}` });
    expect(rcodeOf(packet)).toBe('NOERROR');
    expect(packet.flag_aa).toBe(true);
    expect(txtValues(packet.answers)).toEqual(['value-for-acme-com', 'value-for-wildcard-acme-com']);
    expect(answersOf(packet).every((answer) => answer.ttl === TTL.challenge)).toBe(true);
  });

  it('splits a value longer than 255 bytes into strings of one record', async () => {
    const { packet } = await ask({ name: `aaaaaaaaaaaaaaaaaaaa.${ZONE}` });
    expect(packet.answers).toHaveLength(1);
    expect((answersOf(packet)[0]?.data as Buffer[] | undefined)?.map((s) => s.length)).toEqual([255, 45]);
    expect(txtValues(packet.answers)).toEqual(['x'.repeat(300)]);
  });

  it('answers a label with values but another type with NODATA', async () => {
    const { packet } = await ask({ name: `pfps5gmh765xiuylj73f.${ZONE}`, type: 'A' });
    expect(rcodeOf(packet)).toBe('NOERROR');
    expect(packet.answers).toEqual([]);
    expect(packet.authorities?.[0]).toMatchObject({ type: 'SOA', name: ZONE });
  });

  it('answers NXDOMAIN, authoritatively with the SOA, for a label without values and for deeper names', async () => {
    for (const name of [
      `nothing.${ZONE}`,
      `x.pfps5gmh765xiuylj73f.${ZONE}`,
      `_acme-challenge.${ZONE}`,
      `a.b.${ZONE}`,
    ]) {
      const { packet } = await ask({ name });
      expect(rcodeOf(packet), name).toBe('NXDOMAIN');
      expect(packet.flag_aa).toBe(true);
      expect(packet.answers).toEqual([]);
      expect(packet.authorities).toEqual([expect.objectContaining({ type: 'SOA', ttl: TTL.negative })]);
    }
  });

  it('asks the store only for labels it can hold, and only below the apex', async () => {
    const asked: string[] = [];
    const server = responder(async (label) => {
      asked.push(label);
      return [];
    });
    await ask({ name: `Some-Label_1.${ZONE}` }, server);
    await ask({ name: `two.labels.${ZONE}` }, server);
    await ask({ name: ZONE }, server);
    await ask({ name: `${'x'.repeat(63)}.${ZONE}` }, server);
    expect(asked).toEqual(['some-label_1', 'x'.repeat(63)]);
  });

  it('answers SERVFAIL, not authoritatively, when the store fails, and answers again once it recovers', async () => {
    let failing = true;
    const server = responder(async (label) => {
      if (failing) throw new Error('connection refused');
      return fromMap(label);
    });
    const failed = await ask({ name: `pfps5gmh765xiuylj73f.${ZONE}` }, server);
    expect(rcodeOf(failed.packet)).toBe('SERVFAIL');
    expect(failed.packet.flag_aa).toBe(false);
    expect(failed.packet.answers).toEqual([]);
    failing = false;
    const answered = await ask({ name: `pfps5gmh765xiuylj73f.${ZONE}` }, server);
    expect(txtValues(answered.packet.answers)).toHaveLength(2);
  });
});

describe('names outside the zone', () => {
  it.each([
    ['a name elsewhere', 'example.com', 'TXT'],
    ['the parent of the zone', 'platform.test', 'SOA'],
    ['a name that ends like the zone without being under it', `x${ZONE}`, 'TXT'],
    ['the root', '.', 'NS'],
  ])('refuses %s, without authority or records', async (_what, name, type) => {
    const { packet } = await ask({ name, type });
    expect(rcodeOf(packet)).toBe('REFUSED');
    expect(packet.flag_aa).toBe(false);
    expect(packet.flag_ra).toBe(false);
    expect([packet.answers, packet.authorities, packet.additionals]).toEqual([[], [], []]);
  });

  it('refuses classes other than IN, and zone transfers', async () => {
    expect(rcodeOf((await ask({ name: ZONE, type: 'TXT', klass: 'CH' })).packet)).toBe('REFUSED');
    expect(rcodeOf((await ask({ name: ZONE, type: 'AXFR' })).packet)).toBe('REFUSED');
    expect(rcodeOf((await ask({ name: ZONE, type: 'IXFR' })).packet)).toBe('REFUSED');
  });
});

describe('names in any case (DNS 0x20)', () => {
  it('matches the zone and labels whatever their case, and echoes the question and owner names as asked', async () => {
    const name = `PfPs5GMH765xIUYLJ73F.AcMe.PlatForm.TEST`;
    const sent = query({ name });
    const bytes = await responder().respond(sent, 'udp');
    const packet = decode(bytes as Buffer);
    expect(packet.questions?.[0]?.name).toBe(name);
    // The question section is the query's, byte for byte.
    expect((bytes as Buffer).subarray(12, sent.length).equals(sent.subarray(12))).toBe(true);
    expect(txtValues(packet.answers)).toHaveLength(2);
    expect(packet.answers?.every((answer) => answer.name === name)).toBe(true);
  });
});

describe('EDNS and truncation', () => {
  it('echoes an OPT record with its own UDP payload size, version 0, and the DO bit of the query', async () => {
    const { packet } = await ask({ name: ZONE, type: 'SOA', edns: 4096 });
    expect(optOf(packet)).toMatchObject({ udpPayloadSize: 1232, ednsVersion: 0, extendedRcode: 0 });
    const withDo = encode({
      type: 'query',
      id: 1,
      questions: [{ name: ZONE, type: 'SOA', class: 'IN' }],
      additionals: [
        { name: '.', type: 'OPT', udpPayloadSize: 1232, flags: 0x8000, options: [] } as unknown as OptAnswer,
      ],
    });
    const answer = decode((await responder().respond(withDo, 'udp')) as Buffer);
    expect(optOf(answer)?.flag_do).toBe(true);
  });

  it('answers without an OPT record a query that had none', async () => {
    const { packet } = await ask({ name: ZONE, type: 'SOA' });
    expect(optOf(packet)).toBeUndefined();
  });

  it('answers EDNS versions above 0 with BADVERS (extended rcode 16), as RFC 6891 says', async () => {
    const { packet } = await ask({ name: ZONE, type: 'SOA', edns: 1232, ednsVersion: 1 });
    expect(rcodeOf(packet)).toBe('NOERROR');
    expect(optOf(packet)?.extendedRcode).toBe(1);
    expect(packet.answers).toEqual([]);
  });

  describe('with 40 values at one label', () => {
    const many = Array.from({ length: 40 }, (_, i) => `${i}-${'v'.repeat(41)}`);
    const server = responder(async (label) => (label === 'many' ? many : []));
    const name = `many.${ZONE}`;

    it('truncates over UDP past 512 bytes without EDNS: TC, the question, no records', async () => {
      const { packet, bytes } = await ask({ name }, server);
      expect(bytes.length).toBeLessThanOrEqual(512);
      expect(packet.flag_tc).toBe(true);
      expect(packet.questions?.[0]?.name).toBe(name);
      expect([packet.answers, packet.authorities, packet.additionals]).toEqual([[], [], []]);
    });

    it('truncates over UDP past the client’s EDNS size, keeping the OPT record', async () => {
      const { packet, bytes } = await ask({ name, edns: 1024 }, server);
      expect(bytes.length).toBeLessThanOrEqual(1024);
      expect(packet.flag_tc).toBe(true);
      expect(optOf(packet)?.udpPayloadSize).toBe(1232);
    });

    it('sends at most its own 1232 bytes over UDP whatever the client offers', async () => {
      const { packet } = await ask({ name, edns: 65000 }, server);
      expect(packet.flag_tc).toBe(true);
    });

    it('answers in full over TCP', async () => {
      const { packet, bytes } = await ask({ name, transport: 'tcp' }, server);
      expect(bytes.length).toBeGreaterThan(1232);
      expect(packet.flag_tc).toBe(false);
      expect(txtValues(packet.answers)).toEqual(many);
    });

    it('answers in full over UDP when it fits the client’s EDNS size', async () => {
      const few = responder(async () => many.slice(0, 10));
      const { packet, bytes } = await ask({ name, edns: 1232 }, few);
      expect(bytes.length).toBeGreaterThan(512);
      expect(packet.flag_tc).toBe(false);
      expect(packet.answers).toHaveLength(10);
    });
  });
});

describe('what is not a query it can answer', () => {
  it('answers FORMERR, with the query’s id, to a message that does not decode', async () => {
    const good = query({ name: ZONE, id: 777 });
    const cut = good.subarray(0, good.length - 3);
    const answer = decode((await responder().respond(cut, 'udp')) as Buffer);
    expect(rcodeOf(answer)).toBe('FORMERR');
    expect(answer.id).toBe(777);
    expect(answer.type).toBe('response');
  });

  it('answers FORMERR to a query with no question, or two', async () => {
    const none = encode({ type: 'query', id: 5, questions: [] });
    const two = encode({
      type: 'query',
      id: 6,
      questions: [
        { name: ZONE, type: 'SOA', class: 'IN' },
        { name: ZONE, type: 'NS', class: 'IN' },
      ],
    });
    for (const message of [none, two]) {
      const answer = decode((await responder().respond(message, 'udp')) as Buffer);
      expect(rcodeOf(answer)).toBe('FORMERR');
      expect(answer.answers).toEqual([]);
    }
  });

  it('answers FORMERR to a query with two OPT records', async () => {
    const opt = {
      name: '.',
      type: 'OPT',
      udpPayloadSize: 1232,
      flags: 0,
      options: [],
    } as unknown as OptAnswer;
    const message = encode({
      type: 'query',
      id: 9,
      questions: [{ name: ZONE, type: 'SOA', class: 'IN' }],
      additionals: [opt, opt],
    });
    expect(rcodeOf(decode((await responder().respond(message, 'udp')) as Buffer))).toBe('FORMERR');
  });

  it('answers FORMERR to a question whose name is a compression pointer', async () => {
    const message = query({ name: ZONE, id: 10 });
    // The question's name replaced by a pointer to offset 0 (the header): nothing valid is there.
    const pointer = Buffer.concat([message.subarray(0, 12), Buffer.from([0xc0, 0x00]), message.subarray(-4)]);
    const answer = decode((await responder().respond(pointer, 'udp')) as Buffer);
    expect(rcodeOf(answer)).toBe('FORMERR');
    expect(answer.id).toBe(10);
  });

  it.each([
    ['IQUERY', 1],
    ['STATUS', 2],
    ['NOTIFY', 4],
    ['UPDATE', 5],
  ])('answers NOTIMP to opcode %s, echoing the opcode', async (_name, opcode) => {
    const message = query({ name: ZONE, flags: opcode << 11 });
    const answer = decode((await responder().respond(message, 'udp')) as Buffer);
    expect(rcodeOf(answer)).toBe('NOTIMP');
    expect((answer as unknown as { opcode: string }).opcode).toBe(_name);
  });

  it('sends nothing back for a response, or for fewer bytes than a header', async () => {
    const response = encode({
      type: 'response',
      id: 1,
      questions: [{ name: ZONE, type: 'SOA', class: 'IN' }],
    });
    expect(await responder().respond(response, 'udp')).toBeUndefined();
    expect(await responder().respond(Buffer.from([1, 2, 3]), 'udp')).toBeUndefined();
    expect(await responder().respond(Buffer.alloc(0), 'tcp')).toBeUndefined();
  });

  it('answers a label holding a dot or non-UTF-8 bytes as a name that does not exist, echoing it unchanged', async () => {
    // Wire labels ["pfps5gmh765xiuylj73f.acme", "platform", "test"] and ["\xff", zone…]: dns-packet would
    // decode the first as the zone's own name, with a dot that is inside a label.
    const labels = (...parts: Buffer[]) =>
      Buffer.concat([...parts.flatMap((part) => [Buffer.from([part.length]), part]), Buffer.from([0])]);
    const header = Buffer.from([0, 11, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    const tail = Buffer.from([0, 16, 0, 1]);
    const dotted = labels(
      Buffer.from('pfps5gmh765xiuylj73f.acme'),
      Buffer.from('platform'),
      Buffer.from('test'),
    );
    const binary = labels(Buffer.from([0xff]), ...ZONE.split('.').map((part) => Buffer.from(part)));
    const refused = await responder().respond(Buffer.concat([header, dotted, tail]), 'udp');
    expect(rcodeOf(decode(refused as Buffer))).toBe('REFUSED');
    const missing = (await responder().respond(Buffer.concat([header, binary, tail]), 'udp')) as Buffer;
    expect(rcodeOf(decode(missing))).toBe('NXDOMAIN');
    expect(missing.subarray(12, 12 + binary.length + 4).equals(Buffer.concat([binary, tail]))).toBe(true);
  });

  it('never throws, and answers any bytes with nothing or a response to the same id', async () => {
    const server = responder();
    const valid = query({ name: `pfps5gmh765xiuylj73f.${ZONE}`, edns: 1232 });
    const check = async (message: Uint8Array, transport: Transport) => {
      const bytes = Buffer.from(message);
      const answer = await server.respond(bytes, transport);
      if (answer === undefined) return;
      const packet = decode(answer);
      expect(packet.type).toBe('response');
      expect(packet.id).toBe(bytes.readUInt16BE(0));
      expect(answer.length).toBeLessThanOrEqual(transport === 'udp' ? 1232 : 65535);
    };
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 12, maxLength: 600 }),
        fc.constantFrom<Transport>('udp', 'tcp'),
        check,
      ),
      { numRuns: 1500 },
    );
    // Random bytes rarely decode; valid queries with some bytes changed reach every later step.
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 6,
        }),
        fc.constantFrom<Transport>('udp', 'tcp'),
        async (changes, transport) => {
          const message = Buffer.from(valid);
          for (const [offset, byte] of changes) message[offset] = byte;
          // A response's QR bit makes it go unanswered: keep it a query, so the rest is exercised.
          message[2] = (message[2] as number) & 0x7f;
          await check(message, transport);
        },
      ),
      { numRuns: 1500 },
    );
  });
});
