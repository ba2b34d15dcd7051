import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startDnsServer, type TestDnsServer } from '../../test/helpers/dns-server.js';
import { type CaaAuthority, decideCaa, findRelevantCaa, formatCaa, parseCaa } from './caa.js';
import { WireResolver } from './wire-resolver.js';

let dns: TestDnsServer;
let resolver: WireResolver;
/** For the test of a server that never answers: gives up quickly. */
let impatient: WireResolver;

beforeAll(async () => {
  dns = await startDnsServer();
  // Patient enough for a loaded machine: only the silence test waits the timeout out.
  resolver = new WireResolver({ servers: [dns.address], timeoutMs: 2000 });
  impatient = new WireResolver({ servers: [dns.address], timeoutMs: 200, attempts: 1 });
});
afterAll(async () => {
  await dns.close();
});
beforeEach(() => {
  dns.clear();
  dns.resetQueries();
});

const LE: CaaAuthority = { identities: ['letsencrypt.org'] };
const record = (text: string) => {
  const parsed = parseCaa(text);
  if (parsed === undefined) throw new Error(`not a CAA record: ${text}`);
  return parsed;
};

describe('formatCaa / parseCaa', () => {
  it('round-trip values with quotes, backslashes and parameters', () => {
    for (const value of ['letsencrypt.org', ';', 'ca.example; accounturi=https://x/acct/1', 'a"b\\c', '']) {
      const text = formatCaa({ flags: 128, tag: 'issue', value });
      expect(parseCaa(text)).toEqual({ flags: 128, tag: 'issue', value });
    }
    expect(formatCaa({ flags: 0, tag: 'issue', value: 'say "hi"' })).toBe('0 issue "say \\"hi\\""');
    expect(parseCaa('0 issue letsencrypt.org')).toBeUndefined();
  });
});

describe('findRelevantCaa', () => {
  it('takes the name’s own records and asks nothing above them', async () => {
    dns.set('shop.acme.test', 'CAA', ['0 issue "letsencrypt.org"', '0 iodef "mailto:sec@acme.test"']);
    dns.set('acme.test', 'CAA', '0 issue "digicert.com"');
    expect(await findRelevantCaa(resolver, 'Shop.Acme.Test.')).toEqual({
      ok: true,
      at: 'shop.acme.test',
      records: [
        { flags: 0, tag: 'issue', value: 'letsencrypt.org' },
        { flags: 0, tag: 'iodef', value: 'mailto:sec@acme.test' },
      ],
      cnameChain: [],
    });
    expect(dns.queriesFor('acme.test', 'CAA')).toBe(0);
  });

  it('climbs to the closest parent holding records, through names that do not exist', async () => {
    dns.set('acme.test', 'CAA', '0 issue "digicert.com"');
    const found = await findRelevantCaa(resolver, 'a.b.shop.acme.test');
    expect(found).toMatchObject({
      ok: true,
      at: 'acme.test',
      records: [{ tag: 'issue', value: 'digicert.com' }],
    });
    expect(
      ['a.b.shop.acme.test', 'b.shop.acme.test', 'shop.acme.test'].map((n) => dns.queriesFor(n, 'CAA')),
    ).toEqual([1, 1, 1]);
  });

  it('follows a CNAME at each step, then climbs the name’s own tree, not the target’s', async () => {
    dns.set('shop.acme.test', 'CNAME', 'edge.cdn.test');
    dns.set('edge.cdn.test', 'CAA', '0 issue "pki.goog"');
    expect(await findRelevantCaa(resolver, 'shop.acme.test')).toMatchObject({
      ok: true,
      at: 'shop.acme.test',
      records: [{ value: 'pki.goog' }],
      cnameChain: ['edge.cdn.test'],
    });
    // The target holds nothing, its parent does: that parent is not the name's.
    dns.remove('edge.cdn.test', 'CAA');
    dns.set('cdn.test', 'CAA', '0 issue "pki.goog"');
    dns.set('acme.test', 'CAA', '0 issue "letsencrypt.org"');
    expect(await findRelevantCaa(resolver, 'shop.acme.test')).toMatchObject({
      at: 'acme.test',
      records: [{ value: 'letsencrypt.org' }],
    });
  });

  it('looks a wildcard up at its base name', async () => {
    dns.set('shop.acme.test', 'CAA', '0 issuewild ";"');
    expect(await findRelevantCaa(resolver, '*.shop.acme.test')).toMatchObject({
      ok: true,
      at: 'shop.acme.test',
    });
  });

  it('finds nothing when no name up to the top-level domain has records', async () => {
    dns.set('shop.acme.test', 'A', '192.0.2.1');
    expect(await findRelevantCaa(resolver, 'shop.acme.test')).toEqual({
      ok: true,
      at: undefined,
      records: [],
      cnameChain: [],
    });
    expect(dns.queriesFor('test', 'CAA')).toBe(1);
  });

  it('stops with no answer at a server failure or a timeout, and never reads past it', async () => {
    dns.set('acme.test', 'CAA', '0 issue "letsencrypt.org"');
    dns.fault('shop.acme.test', 'servfail', 'CAA');
    expect(await findRelevantCaa(resolver, 'shop.acme.test')).toEqual({
      ok: false,
      at: 'shop.acme.test',
      failure: 'servfail',
      cnameChain: [],
    });
    expect(dns.queriesFor('acme.test', 'CAA')).toBe(0);
    dns.fault('shop.acme.test', 'silence', 'CAA');
    expect(await findRelevantCaa(impatient, 'shop.acme.test')).toMatchObject({
      ok: false,
      failure: 'timeout',
    });
  });
});

describe('CAA diagnostics down a CNAME chain', () => {
  it('keeps the chain to the alias target that failed, and the Extended DNS Error the resolver gave', async () => {
    // The customer's zone and a CDN's: the server answers each from its own zone only.
    dns.zone('acme.test');
    dns.zone('cdn.test');
    dns.set('shop.acme.test', 'CNAME', 'shop.cdn.test');
    dns.fault('shop.cdn.test', { rcode: 'servfail', infoCode: 6, text: 'signature expired' }, 'CAA');
    const search = await findRelevantCaa(resolver, 'shop.acme.test');
    expect(search).toEqual({
      ok: false,
      at: 'shop.acme.test',
      failure: 'servfail',
      cnameChain: ['shop.cdn.test'],
      extendedError: { infoCode: 6, text: 'signature expired' },
    });
  });
});

describe('decideCaa', () => {
  it('allows any CA without issue records, and only the named ones with them', () => {
    expect(decideCaa([], 'shop.acme.test', LE)).toEqual({ allowed: true });
    expect(decideCaa([record('0 iodef "mailto:a@b.test"')], 'shop.acme.test', LE)).toEqual({ allowed: true });
    const allows = record('0 issue "LetsEncrypt.org"');
    expect(decideCaa([record('0 issue "digicert.com"'), allows], 'shop.acme.test', LE)).toEqual({
      allowed: true,
      by: allows,
    });
    const other = record('0 issue "digicert.com; cansignhttpexchanges=yes"');
    expect(decideCaa([other], 'shop.acme.test', LE)).toEqual({
      allowed: false,
      why: 'other_ca',
      records: [other],
    });
  });

  it('judges a wildcard by issuewild, falling back to issue', () => {
    const records = [record('0 issue "letsencrypt.org"'), record('0 issuewild "digicert.com"')];
    expect(decideCaa(records, 'shop.acme.test', LE)).toMatchObject({ allowed: true });
    expect(decideCaa(records, '*.shop.acme.test', LE)).toMatchObject({ allowed: false, why: 'other_ca' });
    expect(decideCaa([record('0 issue "letsencrypt.org"')], '*.shop.acme.test', LE)).toMatchObject({
      allowed: true,
    });
    expect(decideCaa([record('0 issuewild ";"')], 'shop.acme.test', LE)).toEqual({ allowed: true });
  });

  it('forbids on an empty or malformed value, and on a critical tag nobody knows', () => {
    expect(decideCaa([record('0 issue ";"')], 'shop.acme.test', LE)).toMatchObject({
      allowed: false,
      why: 'nobody',
    });
    expect(decideCaa([record('0 issue "lets encrypt"')], 'shop.acme.test', LE)).toMatchObject({
      allowed: false,
      why: 'nobody',
    });
    const critical = record('128 tbs "unknown"');
    expect(decideCaa([record('0 issue "letsencrypt.org"'), critical], 'shop.acme.test', LE)).toEqual({
      allowed: false,
      why: 'critical',
      records: [critical],
    });
    // A critical tag that is known, or an unknown one that is not critical, changes nothing.
    expect(
      decideCaa(
        [record('128 issue "letsencrypt.org"'), record('0 tbs "x"'), record('128 iodef "mailto:a@b.test"')],
        'shop.acme.test',
        LE,
      ),
    ).toMatchObject({ allowed: true });
  });

  it('checks RFC 8657 accounturi and validationmethods when the CA says what they are', () => {
    const ca: CaaAuthority = {
      identities: ['letsencrypt.org'],
      accountUri: 'https://acme.test/acct/1',
      validationMethods: ['http-01'],
    };
    const otherAccount = record('0 issue "letsencrypt.org; accounturi=https://acme.test/acct/2"');
    expect(decideCaa([otherAccount], 'shop.acme.test', ca)).toMatchObject({ allowed: false, why: 'account' });
    expect(
      decideCaa([record('0 issue "letsencrypt.org; accounturi=https://acme.test/acct/1"')], 'x.test', ca),
    ).toMatchObject({ allowed: true });
    const dnsOnly = record('0 issue "letsencrypt.org; validationmethods=dns-01"');
    expect(decideCaa([dnsOnly], 'shop.acme.test', ca)).toMatchObject({ allowed: false, why: 'method' });
    expect(
      decideCaa([record('0 issue "letsencrypt.org; validationmethods=dns-01,http-01"')], 'x.test', ca),
    ).toMatchObject({ allowed: true });
    // Another record allowing the account and method is enough.
    expect(
      decideCaa([dnsOnly, otherAccount, record('0 issue "letsencrypt.org"')], 'x.test', ca),
    ).toMatchObject({
      allowed: true,
    });
  });

  it('without the CA’s identities, refuses only what forbids every CA', () => {
    const unknown: CaaAuthority = { identities: undefined };
    expect(decideCaa([record('0 issue "digicert.com"')], 'shop.acme.test', unknown)).toEqual({
      allowed: true,
      unverified: true,
    });
    expect(decideCaa([record('0 issue ";"')], 'shop.acme.test', unknown)).toMatchObject({
      allowed: false,
      why: 'nobody',
    });
    expect(decideCaa([record('128 tbs "x"')], 'shop.acme.test', unknown)).toMatchObject({ why: 'critical' });
  });
});
