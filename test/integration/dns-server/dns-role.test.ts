import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { promises as dnsPromises } from 'node:dns';
import { promisify } from 'node:util';
import type { DecodedPacket, OptAnswer, SoaAnswer } from 'dns-packet';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchedValues } from '../../../src/dns-server/batched-values.js';
import { type DnsListener, startDnsServer } from '../../../src/dns-server/server.js';
import { systemClock } from '../../../src/domain/clock.js';
import { challengeLabel } from '../../../src/domain/dns-records.js';
import { newId } from '../../../src/domain/ids.js';
import { Metrics } from '../../../src/ops/metrics.js';
import { createStore } from '../../../src/store/index.js';
import type { Store } from '../../../src/store/store.js';
import {
  DnsTcpConnection,
  decode,
  dnsQuery,
  rcodeOf,
  tcpExchange,
  txtValues,
  udpExchange,
} from '../../helpers/dns-client.js';
import {
  createProcessState,
  type ProcessState,
  type RunningProcess,
  startPortico,
} from '../../helpers/process.js';
import { backends } from '../../helpers/stores.js';

/**
 * The dns role as operators run it, `portico serve --roles dns`, a process of its own on each
 * store, asked over real UDP and TCP sockets by three clients: dns-packet (the bytes), `dig` (what
 * an operator checks with) and Node's c-ares resolver (a stub resolver as libraries use it). The
 * challenge records are written by this test's own store connection, as a worker on another node
 * would write them.
 */

const ZONE = 'acme.platform.test';
const execFileAsync = promisify(execFile);

const DIG = spawnSync('dig', ['-v']).status === 0;
if (!DIG) {
  const line = '!'.repeat(100);
  console.warn(
    `\n${line}\n!!! dns-server/dns-role.test.ts: the dig checks are SKIPPED: dig is not installed (apt-get install bind9-dnsutils).\n${line}\n`,
  );
  // CI installs it (.ci/run): there, a skip would hide that the checks never ran.
  if (process.env.CI) throw new Error('CI must run the dig checks of the dns role: dig is not installed');
}

/** `dig` at the role: the header line's status, the flags, and the answer section's lines. */
async function dig(port: number, ...args: string[]) {
  const { stdout } = await execFileAsync('dig', [
    '@127.0.0.1',
    '-p',
    String(port),
    '+norecurse',
    '+time=5',
    '+tries=1',
    ...args,
  ]);
  return {
    status: /status: (\w+)/.exec(stdout)?.[1],
    flags: (/;; flags: ([a-z ]+);/.exec(stdout)?.[1] ?? '').split(' '),
    answers: stdout
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith(';'))
      .map((line) => line.split(/\s+/)),
    stdout,
  };
}

describe.each(backends)('portico serve --roles dns on $name', (backend) => {
  let state: ProcessState;
  let portico: RunningProcess;
  let port: number;
  /** The test's own connection to the role's store: the "other worker" writing challenges. */
  let store: Store;
  let domainId: string;
  const soon = () => new Date(Date.now() + 600_000).toISOString();
  const now = () => new Date().toISOString();
  const put = (label: string, value: string) =>
    store.putDnsChallenge({ label, value, domainId: null, createdAt: now(), expiresAt: soon() });
  const udp = async (name: string, type: string, options = {}) =>
    decode(await udpExchange(port, dnsQuery(name, type, options)));

  beforeAll(async () => {
    state = await createProcessState(backend.name, 'portico-dns-');
    portico = startPortico(['serve', '--roles', 'dns'], {
      ...state.env,
      PORTICO_ACME_DNS_ZONE: ZONE,
      PORTICO_DNS_LISTEN: '127.0.0.1:0',
      PORTICO_LOG_FORMAT: 'text',
      // A dns-only node builds no services: on PostgreSQL it needs no encryption key.
      PORTICO_ENCRYPTION_KEY: undefined,
    });
    const announced = await portico.waitFor(
      /Portico dns listening on 127\.0\.0\.1:(\d+) \(UDP and TCP\) for acme\.platform\.test/,
    );
    port = Number(announced[1]);
    store = await createStore({ dataDir: state.dataDir, databaseUrl: state.env.DATABASE_URL || undefined });
    const orgId = (await store.ensureOrganization('dns-role', newId('org'), now())).id;
    const appId = newId('app');
    await store.insertApp({
      ...{ id: appId, orgId, slug: `dns-${appId.slice(4)}`, title: 't', description: null, originUrl: null },
      ...{ createdAt: now(), updatedAt: now() },
    });
    domainId = newId('dom');
    await store.insertDomain({
      ...{ id: domainId, appId, orgId, name: 'acme.dns-role.test', status: 'verified', isPrimary: false },
      ...{
        verificationToken: 't',
        createdAt: now(),
        updatedAt: now(),
        verifiedAt: now(),
        verifyingSince: null,
      },
      ...{
        lastCheckedAt: null,
        nextCheckAt: null,
        verificationErrors: [],
        routingObserved: [],
        routingVia: null,
        failureStreak: 0,
        serving: null,
      },
    });
  });

  afterAll(async () => {
    await store?.close();
    await portico?.stop();
    await state?.remove();
  });

  it('answers a challenge written by another connection from its next query, over UDP and TCP, until it is removed', async () => {
    const label = challengeLabel('org_dns_role', 'acme.dns-role.test');
    const name = `${label}.${ZONE}`;
    expect(rcodeOf(await udp(name, 'TXT'))).toBe('NXDOMAIN');
    // What an issuer does: write, then (here: at once) have the CA ask. No wait in between.
    expect(
      await store.putDnsChallenge({
        label,
        value: 'key-authz-digest',
        domainId,
        createdAt: now(),
        expiresAt: soon(),
      }),
    ).toBe(true);
    const overUdp = await udp(name, 'TXT');
    expect(rcodeOf(overUdp)).toBe('NOERROR');
    expect(overUdp.flag_aa).toBe(true);
    expect(overUdp.flag_ra).toBe(false);
    expect(txtValues(overUdp)).toEqual(['key-authz-digest']);
    const overTcp = decode(await tcpExchange(port, dnsQuery(name, 'TXT')));
    expect(txtValues(overTcp)).toEqual(['key-authz-digest']);

    await store.removeDnsChallenge(label, 'key-authz-digest');
    expect(rcodeOf(await udp(name, 'TXT'))).toBe('NXDOMAIN');
  });

  it('answers both values at one label, as for a certificate covering acme.com and *.acme.com', async () => {
    await put('both', 'for-acme-com');
    await put('both', 'for-wildcard');
    expect(txtValues(await udp(`both.${ZONE}`, 'TXT')).sort()).toEqual(['for-acme-com', 'for-wildcard']);
    // Node's resolver (c-ares), as libraries ask: a record's strings come as an array each.
    const resolver = new dnsPromises.Resolver({ timeout: 5000, tries: 1 });
    resolver.setServers([`127.0.0.1:${port}`]);
    expect((await resolver.resolveTxt(`both.${ZONE}`)).map((strings) => strings.join('')).sort()).toEqual([
      'for-acme-com',
      'for-wildcard',
    ]);
    await expect(resolver.resolveTxt(`missing.${ZONE}`)).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(resolver.resolve4(`both.${ZONE}`)).rejects.toMatchObject({ code: 'ENODATA' });
  });

  it('answers SOA and NS at the apex, NXDOMAIN, NODATA and REFUSED, each with the right authority', async () => {
    const soa = (await udp(ZONE, 'SOA')).answers?.[0] as SoaAnswer;
    expect(soa.data).toMatchObject({
      mname: `ns.${ZONE}`,
      rname: `hostmaster.${ZONE}`,
    });
    // Time-based: seconds since 1970 when it answered (both clocks are this machine's).
    expect(Math.abs(Number(soa.data.serial) - Date.now() / 1000)).toBeLessThan(120);
    const ns = await udp(ZONE, 'NS');
    expect(ns.answers?.map((answer) => ('data' in answer ? answer.data : undefined))).toEqual([`ns.${ZONE}`]);
    expect(ns.additionals?.map((answer) => ('data' in answer ? answer.data : undefined))).toEqual([
      '127.0.0.1',
    ]);

    const nxdomain = await udp(`nothing.${ZONE}`, 'TXT');
    expect([rcodeOf(nxdomain), nxdomain.flag_aa, nxdomain.authorities?.[0]?.type]).toEqual([
      'NXDOMAIN',
      true,
      'SOA',
    ]);
    const nodata = await udp(ZONE, 'TXT');
    expect([rcodeOf(nodata), nodata.answers, nodata.authorities?.[0]?.type]).toEqual(['NOERROR', [], 'SOA']);
    const refused = await udp('example.com', 'A');
    expect([rcodeOf(refused), refused.flag_aa, refused.answers]).toEqual(['REFUSED', false, []]);
  });

  it('echoes a question in mixed case (DNS 0x20) and answers it', async () => {
    await put('mixedcase', 'v');
    const name = `MiXeDcAsE.AcMe.PLATFORM.test`;
    const answer = await udp(name, 'TXT');
    expect(answer.questions?.[0]?.name).toBe(name);
    expect(txtValues(answer)).toEqual(['v']);
  });

  it('speaks EDNS, truncates a large answer over UDP, and gives it whole over TCP', async () => {
    const values = Array.from({ length: 40 }, (_, i) => `${String(i).padStart(2, '0')}-${'v'.repeat(41)}`);
    for (const value of values) await put('large', value);
    const name = `large.${ZONE}`;
    const classic = await udp(name, 'TXT');
    expect([classic.flag_tc, classic.answers]).toEqual([true, []]);
    const edns = await udp(name, 'TXT', { edns: 1232 });
    expect(edns.flag_tc).toBe(true);
    const opt = edns.additionals?.find((record): record is OptAnswer => record.type === 'OPT');
    expect(opt?.udpPayloadSize).toBe(1232);
    const whole = decode(await tcpExchange(port, dnsQuery(name, 'TXT')));
    expect(whole.flag_tc).toBe(false);
    expect(txtValues(whole).sort()).toEqual(values);
  });

  it('answers several queries on one TCP connection', async () => {
    await put('pipelined', 'p');
    const connection = await DnsTcpConnection.open(port);
    try {
      connection.send(
        dnsQuery(ZONE, 'SOA', { id: 101 }),
        dnsQuery(`pipelined.${ZONE}`, 'TXT', { id: 102 }),
        dnsQuery('example.com', 'A', { id: 103 }),
      );
      const answers = (await connection.received(3)).map((bytes) => decode(bytes));
      const byId = new Map(answers.map((packet) => [packet.id, packet]));
      expect(rcodeOf(byId.get(101) as DecodedPacket)).toBe('NOERROR');
      expect(txtValues(byId.get(102) as DecodedPacket)).toEqual(['p']);
      expect(rcodeOf(byId.get(103) as DecodedPacket)).toBe('REFUSED');
      // And later on the same connection.
      connection.send(dnsQuery(`pipelined.${ZONE}`, 'TXT', { id: 104 }));
      expect(decode((await connection.received(4))[3] as Buffer).id).toBe(104);
    } finally {
      connection.close();
    }
  });

  it('answers FORMERR and NOTIMP, and keeps answering after a flood of random bytes', async () => {
    // A header whose question is cut short: FORMERR, with the query's id.
    const cut = dnsQuery(ZONE, 'SOA', { id: 0x4321 }).subarray(0, 20);
    const answer = decode(await udpExchange(port, cut));
    expect([answer.id, answer.type, rcodeOf(answer)]).toEqual([0x4321, 'response', 'FORMERR']);
    const notify = decode(await udpExchange(port, dnsQuery(ZONE, 'SOA', { flags: 4 << 11 })));
    expect(rcodeOf(notify)).toBe('NOTIMP');

    // Random datagrams and random TCP bytes: whatever comes back (or not), the process stays up.
    const sender = dgram.createSocket('udp4');
    for (let i = 0; i < 500; i++) {
      const garbage = randomBytes(1 + (i % 300));
      // Most of them queries (QR clear), so they are looked at beyond the header.
      if (garbage.length > 2 && i % 5 !== 0) garbage[2] = (garbage[2] as number) & 0x7f;
      await new Promise((resolve) => sender.send(garbage, port, '127.0.0.1', resolve));
    }
    sender.close();
    const connection = await DnsTcpConnection.open(port);
    connection.socket.write(randomBytes(5000));
    connection.close();
    // The burst may have filled the server's receive buffer, whose overflow the kernel drops: the
    // query is sent again until answered, as a resolver would.
    const soa = decode(
      await udpExchange(port, dnsQuery(ZONE, 'SOA', { id: 999 }), '127.0.0.1', { resendEveryMs: 200 }),
    );
    expect([soa.id, rcodeOf(soa)]).toEqual([999, 'NOERROR']);
    expect(portico.child.exitCode).toBeNull();
  });

  it.runIf(DIG)(
    'answers dig over UDP and TCP: authoritative, no recursion, TC retried over TCP',
    async () => {
      await put('dig', 'seen-by-dig');
      const txt = await dig(port, `dig.${ZONE}`, 'TXT');
      expect(txt.status).toBe('NOERROR');
      expect(txt.flags).toContain('aa');
      expect(txt.flags).not.toContain('ra');
      expect(txt.answers).toEqual([[`dig.${ZONE}.`, '1', 'IN', 'TXT', '"seen-by-dig"']]);
      const overTcp = await dig(port, '+tcp', `dig.${ZONE}`, 'TXT');
      expect(overTcp.answers).toHaveLength(1);

      const soa = await dig(port, ZONE, 'SOA');
      expect(soa.answers[0]?.slice(0, 6)).toEqual([
        `${ZONE}.`,
        '3600',
        'IN',
        'SOA',
        `ns.${ZONE}.`,
        `hostmaster.${ZONE}.`,
      ]);
      expect((await dig(port, `nothing.${ZONE}`, 'TXT')).status).toBe('NXDOMAIN');
      expect((await dig(port, 'example.com', 'A')).status).toBe('REFUSED');

      // 40 values do not fit 512 bytes: dig sees TC and asks again over TCP, as resolvers do.
      const large = await dig(port, '+bufsize=512', `large.${ZONE}`, 'TXT');
      expect(large.stdout).toMatch(/Truncated, retrying in TCP mode/);
      expect(large.answers).toHaveLength(40);
    },
  );

  it('stops on SIGTERM with exit code 0', async () => {
    const stopping = startPortico(['serve', '--roles', 'dns'], {
      ...state.env,
      PORTICO_ACME_DNS_ZONE: ZONE,
      PORTICO_DNS_LISTEN: '127.0.0.1:0',
      PORTICO_LOG_FORMAT: 'text',
    });
    const ownPort = Number((await stopping.waitFor(/Portico dns listening on 127\.0\.0\.1:(\d+)/))[1]);
    expect(rcodeOf(decode(await udpExchange(ownPort, dnsQuery(ZONE, 'SOA'))))).toBe('NOERROR');
    expect(await stopping.stop('SIGTERM')).toBe(0);
    expect(stopping.output()).toMatch(/shutting down/);
  });

  it.runIf(backend.name === 'sqlite')(
    'refuses to start on a port in use, naming PORTICO_DNS_LISTEN',
    async () => {
      const second = startPortico(['serve', '--roles', 'dns'], {
        ...state.env,
        PORTICO_ACME_DNS_ZONE: ZONE,
        PORTICO_DNS_LISTEN: `127.0.0.1:${port}`,
        PORTICO_LOG_FORMAT: 'text',
      });
      expect(await new Promise((resolve) => second.child.once('exit', resolve))).toBe(1);
      expect(second.output()).toContain(
        `portico: port ${port} (PORTICO_DNS_LISTEN) on 127.0.0.1 is already in use, by another program or another Portico`,
      );
    },
  );
});

describe.each(backends)('the dns server’s TCP connections on $name', (backend) => {
  let store: Store;
  let server: DnsListener;

  beforeAll(async () => {
    store = await backend.open();
    server = await startDnsServer({
      host: '127.0.0.1',
      port: 0,
      zone: ZONE,
      nameservers: [],
      values: batchedValues((labels) => store.listDnsChallengeValues(labels, new Date().toISOString())),
      logger: pino({ level: 'silent' }),
      idleTimeoutMs: 300,
    });
  });
  afterAll(async () => {
    await server?.close();
    await store?.close();
  });

  it('closes a connection once it has been idle', async () => {
    const connection = await DnsTcpConnection.open(server.port);
    connection.send(dnsQuery(ZONE, 'SOA'));
    await connection.received(1);
    await connection.closed;
    expect(connection.socket.destroyed).toBe(true);
  });

  it('answers a client that sent its query and closed its side of the connection', async () => {
    const connection = await DnsTcpConnection.open(server.port);
    connection.send(dnsQuery(ZONE, 'NS', { id: 77 }));
    connection.socket.end();
    const [answer] = await connection.received(1);
    expect(decode(answer as Buffer).id).toBe(77);
    await connection.closed;
  });

  it('counts its queries by transport and rcode on /metrics (portico_dns_queries_total)', async () => {
    const metrics = new Metrics(store, systemClock);
    const counted = await startDnsServer({
      host: '127.0.0.1',
      port: 0,
      zone: ZONE,
      nameservers: [],
      values: async () => [],
      logger: pino({ level: 'silent' }),
      onQuery: metrics.countDnsQuery,
    });
    try {
      await udpExchange(counted.port, dnsQuery(`nothing.${ZONE}`, 'TXT'));
      await udpExchange(counted.port, dnsQuery(`nothing.${ZONE}`, 'TXT', { id: 2 }));
      await udpExchange(counted.port, dnsQuery('example.com', 'A'));
      await tcpExchange(counted.port, dnsQuery(ZONE, 'SOA'));
      const text = await metrics.registry.getSingleMetricAsString('portico_dns_queries_total');
      const counts = new Map(
        [...text.matchAll(/^portico_dns_queries_total\{(.*)\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]),
      );
      expect(counts).toEqual(
        new Map([
          ['transport="udp",rcode="NXDOMAIN"', 2],
          ['transport="udp",rcode="REFUSED"', 1],
          ['transport="tcp",rcode="NOERROR"', 1],
        ]),
      );
    } finally {
      await counted.close();
    }
  });

  it('answers over IPv6 UDP and TCP when it listens on ::1', async () => {
    const six = await startDnsServer({
      host: '::1',
      port: 0,
      zone: ZONE,
      nameservers: [],
      values: async () => [],
      logger: pino({ level: 'silent' }),
    });
    try {
      const overUdp = decode(await udpExchange(six.port, dnsQuery(`ns.${ZONE}`, 'AAAA'), '::1'));
      expect(overUdp.answers?.map((answer) => ('data' in answer ? answer.data : undefined))).toEqual(['::1']);
      const overTcp = decode(await tcpExchange(six.port, dnsQuery(ZONE, 'SOA'), '::1'));
      expect(rcodeOf(overTcp)).toBe('NOERROR');
    } finally {
      await six.close();
    }
  });
});
