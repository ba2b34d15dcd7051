import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startDnsServer, type TestDnsServer } from '../../test/helpers/dns-server.js';
import {
  checkOwnership,
  checkRouting,
  DNS_ERROR_CODES,
  isDefinitive,
  type RoutingCheckInput,
} from './checks.js';
import { WireResolver } from './wire-resolver.js';

const TOKEN = 'q8J3vVt0n2xX7bK1mZ5w';
const EXPECTED = `mixpeek-site-verification=${TOKEN}`;
const TXT_NAME = '_mixpeek-verify.shop.acme.test';
const TARGET = 'cname.apps.example.test';
const EDGE_V4 = ['203.0.113.10', '203.0.113.11'];
const EDGE_V6 = ['2001:db8::10'];

let dns: TestDnsServer;
let resolver: WireResolver;

beforeAll(async () => {
  dns = await startDnsServer();
  resolver = new WireResolver({ servers: [dns.address], timeoutMs: 200, attempts: 1 });
});
afterAll(async () => {
  await dns.close();
});
beforeEach(() => {
  dns.clear();
  dns.resetQueries();
});

describe('checkOwnership', () => {
  const check = () =>
    checkOwnership(resolver, {
      name: '_mixpeek-verify.Shop.Acme.Test.',
      valuePrefix: 'mixpeek-site-verification=',
      token: TOKEN,
    });

  it('passes on the expected value, split into several strings, beside other values', async () => {
    dns.set(TXT_NAME, 'TXT', ['google-site-verification=xyz', ['mixpeek-site-', `verification=${TOKEN}`]]);
    expect(await check()).toEqual({
      ok: true,
      definitive: true,
      observed: ['google-site-verification=xyz', EXPECTED],
      errors: [],
    });
    expect(dns.queryCount).toBe(1);
  });

  it('follows a CNAME that delegates the record', async () => {
    dns.set(TXT_NAME, 'CNAME', 'verify.dns-host.test');
    dns.set('verify.dns-host.test', 'TXT', EXPECTED);
    expect(await check()).toMatchObject({ ok: true, observed: [EXPECTED] });
  });

  it('reports a stale token as a definitive mismatch', async () => {
    dns.set(TXT_NAME, 'TXT', 'mixpeek-site-verification=old-token');
    const result = await check();
    expect(result).toMatchObject({
      ok: false,
      definitive: true,
      observed: ['mixpeek-site-verification=old-token'],
    });
    expect(result.errors).toEqual([
      {
        code: 'txt_mismatch',
        message: `TXT ${TXT_NAME} has 1 value, none is ${EXPECTED}: replace mixpeek-site-verification=old-token, which holds another token, with ${EXPECTED}`,
      },
    ]);
  });

  it('points out quotes pasted into the value, and values unrelated to it', async () => {
    dns.set(TXT_NAME, 'TXT', `"${EXPECTED}"`);
    expect((await check()).errors[0]?.message).toMatch(/has 1 value, none is .*: remove the quotes/);
    dns.set(TXT_NAME, 'TXT', ['v=spf1 -all', 'something else']);
    const result = await check();
    expect(result.errors[0]).toMatchObject({ code: 'txt_mismatch' });
    expect(result.errors[0]?.message).toMatch(/has 2 values, none is .*: add .* \(other values can stay\)$/);
  });

  it('reports a missing record, NXDOMAIN or NODATA, as definitive txt_not_found', async () => {
    const nxdomain = await check();
    expect(nxdomain).toMatchObject({ ok: false, definitive: true, observed: [] });
    expect(nxdomain.errors).toEqual([
      {
        code: 'txt_not_found',
        message: `No TXT record found: ${TXT_NAME} does not exist. Create TXT ${TXT_NAME} with the value ${EXPECTED}`,
      },
    ]);

    dns.set(TXT_NAME, 'A', '192.0.2.1');
    const nodata = await check();
    expect(nodata).toMatchObject({ ok: false, definitive: true });
    expect(nodata.errors[0]).toMatchObject({
      code: 'txt_not_found',
      message: expect.stringMatching(/has no TXT record/),
    });
  });

  it.each(['servfail', 'refused', 'silence'] as const)('reports %s as not definitive', async (fault) => {
    dns.set(TXT_NAME, 'TXT', EXPECTED);
    dns.fault(TXT_NAME, fault);
    const result = await check();
    const code = fault === 'silence' ? 'timeout' : fault;
    expect(result).toMatchObject({ ok: false, definitive: false, observed: [], errors: [{ code }] });
    expect(result.errors[0]?.message).toContain(dns.address);
  });

  it('reports a CNAME loop at the record as definitive', async () => {
    dns.set(TXT_NAME, 'CNAME', 'loop.acme.test');
    dns.set('loop.acme.test', 'CNAME', TXT_NAME);
    const result = await check();
    expect(result).toMatchObject({ ok: false, definitive: true, errors: [{ code: 'cname_loop' }] });
    expect(result.errors[0]?.message).toContain(`${TXT_NAME} → loop.acme.test → ${TXT_NAME}`);
  });
});

describe('checkRouting', () => {
  const input: RoutingCheckInput = {
    domain: 'shop.acme.test',
    cnameTarget: 'CNAME.Apps.Example.Test.',
    edgeIPv4: EDGE_V4,
    edgeIPv6: EDGE_V6,
  };
  const configured = [`CNAME ${TARGET}`, 'A 203.0.113.10', 'A 203.0.113.11', 'AAAA 2001:db8::10'];
  const check = (overrides: Partial<RoutingCheckInput> = {}) =>
    checkRouting(resolver, { ...input, ...overrides });

  it('passes on a CNAME to the target, in one query', async () => {
    dns.set('shop.acme.test', 'CNAME', TARGET);
    dns.set(TARGET, 'A', EDGE_V4);
    expect(await check()).toEqual({
      ok: true,
      definitive: true,
      configured,
      observed: [`CNAME ${TARGET}`],
      errors: [],
    });
    expect(dns.queryCount).toBe(1);
  });

  it('passes on a chain through aliases of the customer that reaches the target', async () => {
    dns.set('shop.acme.test', 'CNAME', 'alias.acme.test');
    dns.set('alias.acme.test', 'CNAME', TARGET);
    dns.set(TARGET, 'CNAME', 'lb.example.test');
    dns.set('lb.example.test', 'A', EDGE_V4);
    expect(await check()).toMatchObject({
      ok: true,
      observed: ['CNAME alias.acme.test', `CNAME ${TARGET}`, 'CNAME lb.example.test'],
    });
  });

  it('reports a CNAME elsewhere as a definitive cname_mismatch', async () => {
    dns.set('shop.acme.test', 'CNAME', 'old-host.example.test');
    dns.set('old-host.example.test', 'A', '192.0.2.99');
    expect(await check()).toEqual({
      ok: false,
      definitive: true,
      configured,
      observed: ['CNAME old-host.example.test'],
      errors: [
        {
          code: 'cname_mismatch',
          message: `shop.acme.test points to old-host.example.test, not ${TARGET}: point its CNAME at ${TARGET}`,
        },
      ],
    });
  });

  it('passes on an apex whose A and AAAA records are all edge addresses', async () => {
    dns.set('shop.acme.test', 'A', EDGE_V4);
    dns.set('shop.acme.test', 'AAAA', '2001:DB8:0::10');
    expect(await check()).toMatchObject({
      ok: true,
      definitive: true,
      observed: ['A 203.0.113.10', 'A 203.0.113.11', 'AAAA 2001:db8::10'],
    });
    dns.remove('shop.acme.test', 'AAAA');
    expect(await check()).toMatchObject({ ok: true, observed: ['A 203.0.113.10', 'A 203.0.113.11'] });
  });

  it('reports an AAAA elsewhere while the A records are right', async () => {
    dns.set('shop.acme.test', 'A', EDGE_V4);
    dns.set('shop.acme.test', 'AAAA', '2001:db8::99');
    const result = await check();
    expect(result).toMatchObject({ ok: false, definitive: true });
    expect(result.errors).toEqual([
      {
        code: 'aaaa_mismatch',
        message:
          'AAAA shop.acme.test is 2001:db8::99, not an edge address (2001:db8::10): change or remove it',
      },
    ]);
  });

  it('reports an A record outside the edge, and apex records where none are served', async () => {
    dns.set('shop.acme.test', 'A', ['203.0.113.10', '192.0.2.1']);
    expect((await check()).errors).toEqual([
      {
        code: 'a_mismatch',
        message:
          'A shop.acme.test is 192.0.2.1, not an edge address (203.0.113.10, 203.0.113.11): change or remove it',
      },
    ]);
    dns.set('shop.acme.test', 'AAAA', '2001:db8::10');
    const result = await check({ edgeIPv4: [], edgeIPv6: [] });
    expect(result).toMatchObject({ ok: false, definitive: true, configured: [`CNAME ${TARGET}`] });
    expect(result.errors.map((e) => e.code)).toEqual(['a_mismatch', 'aaaa_mismatch']);
    expect(result.errors[0]?.message).toMatch(/apex domains are not served here: replace them with CNAME/);
  });

  it('reports a name without routing records, and one that does not exist', async () => {
    dns.set('shop.acme.test', 'TXT', 'hello');
    expect(await check()).toMatchObject({
      ok: false,
      definitive: true,
      observed: [],
      errors: [
        {
          code: 'routing_not_found',
          message: `shop.acme.test has no CNAME, A or AAAA record: create CNAME shop.acme.test → ${TARGET}, or at a zone apex A 203.0.113.10, 203.0.113.11`,
        },
      ],
    });
    dns.clear();
    expect(await check({ edgeIPv4: [] })).toMatchObject({
      ok: false,
      definitive: true,
      errors: [
        {
          code: 'nxdomain',
          message: `shop.acme.test does not exist in DNS (NXDOMAIN): create CNAME shop.acme.test → ${TARGET}`,
        },
      ],
    });
  });

  it('reports server failures as not definitive', async () => {
    dns.set('shop.acme.test', 'CNAME', TARGET);
    dns.fault('shop.acme.test', 'servfail');
    expect(await check()).toMatchObject({ ok: false, definitive: false, errors: [{ code: 'servfail' }] });
    dns.fault('shop.acme.test', 'silence');
    expect(await check()).toMatchObject({ ok: false, definitive: false, errors: [{ code: 'timeout' }] });
  });

  it('is definitive when one lookup shows a problem and another fails, not when all else is right', async () => {
    dns.set('shop.acme.test', 'A', '192.0.2.1');
    dns.fault('shop.acme.test', 'servfail', 'AAAA');
    const wrong = await check();
    expect(wrong).toMatchObject({ ok: false, definitive: true, observed: ['A 192.0.2.1'] });
    expect(wrong.errors.map((e) => e.code)).toEqual(['a_mismatch', 'servfail']);

    dns.set('shop.acme.test', 'A', EDGE_V4);
    expect(await check()).toMatchObject({ ok: false, definitive: false, errors: [{ code: 'servfail' }] });
  });

  it('reports a CNAME loop', async () => {
    dns.set('shop.acme.test', 'CNAME', 'a.acme.test');
    dns.set('a.acme.test', 'CNAME', 'shop.acme.test');
    expect(await check()).toMatchObject({
      ok: false,
      definitive: true,
      observed: ['CNAME a.acme.test', 'CNAME shop.acme.test'],
      errors: [{ code: 'cname_loop' }],
    });
  });

  it('checks a wildcard at a name under it, and says to create the record at the wildcard', async () => {
    const wildcard = { domain: 'k3xq7a.acme.test', recordName: '*.acme.test' };
    dns.set('*.acme.test', 'CNAME', TARGET);
    expect(await check(wildcard)).toMatchObject({ ok: true, observed: [`CNAME ${TARGET}`] });
    dns.set('*.acme.test', 'CNAME', 'old-host.example.test');
    const elsewhere = await check(wildcard);
    expect(elsewhere.errors).toEqual([
      {
        code: 'cname_mismatch',
        message: `k3xq7a.acme.test points to old-host.example.test, not ${TARGET}: point the CNAME *.acme.test at ${TARGET}`,
      },
    ]);
    dns.remove('*.acme.test');
    dns.set('acme.test', 'A', '192.0.2.1');
    const missing = await check(wildcard);
    expect(missing.errors[0]?.code).toBe('nxdomain');
    expect(missing.errors[0]?.message).toContain(`create CNAME *.acme.test → ${TARGET}`);
  });
});

describe('diagnostics down a CNAME chain', () => {
  // Two zones, as on the Internet: the customer's, and a CDN's their domain is a CNAME to. The
  // server answers each from its own zone only, so the resolver asks for the CDN's name itself.
  const input: RoutingCheckInput = {
    domain: 'shop.acme.test',
    cnameTarget: TARGET,
    edgeIPv4: [],
    edgeIPv6: [],
  };
  beforeEach(() => {
    dns.zone('acme.test');
    dns.zone('cdn.test');
    dns.set('shop.acme.test', 'CNAME', 'shop.cdn.test');
    dns.set('shop.cdn.test', 'CNAME', TARGET);
  });

  it('names the hop whose server refused, not the customer domain', async () => {
    dns.fault('shop.cdn.test', 'refused');
    const result = await checkRouting(resolver, input);
    expect(result).toMatchObject({ ok: false, definitive: false, observed: ['CNAME shop.cdn.test'] });
    expect(result.errors).toEqual([
      {
        code: 'refused',
        message: `${dns.address} refused to answer for shop.cdn.test (shop.acme.test points there: shop.acme.test → shop.cdn.test) (REFUSED): check that shop.cdn.test's name servers serve its zone; the check will run again`,
      },
    ]);
    // The customer's own name answered: only the CDN's was refused.
    expect(dns.queriesFor('shop.acme.test')).toBeGreaterThan(0);
    expect(dns.queriesFor('shop.cdn.test', 'A')).toBe(1);
  });

  it('names the domain itself when its own server refuses', async () => {
    dns.fault('shop.acme.test', 'refused');
    const [error] = (await checkRouting(resolver, input)).errors;
    expect(error?.message).toMatch(/^127\.0\.0\.1:\d+ refused to answer for shop\.acme\.test \(REFUSED\)/);
  });

  it('carries an Extended DNS Error: DNSSEC bogus down the chain is dnssec_bogus, naming the hop', async () => {
    dns.fault('shop.cdn.test', {
      rcode: 'servfail',
      infoCode: 6,
      text: 'validation failure <shop.cdn.test. A IN>: no keys',
    });
    const result = await checkRouting(resolver, input);
    expect(result).toMatchObject({ ok: false, definitive: false });
    expect(result.errors).toHaveLength(1);
    const [error] = result.errors;
    expect(error?.code).toBe('dnssec_bogus');
    expect(error?.message).toContain(
      'could not validate the DNSSEC signatures of shop.cdn.test (shop.acme.test points there',
    );
    expect(error?.message).toContain(
      '(SERVFAIL, Extended DNS Error 6 DNSSEC Bogus: "validation failure <shop.cdn.test. A IN>: no keys")',
    );
    expect(error?.message).not.toContain('for shop.acme.test');
  });

  it('carries another Extended DNS Error under a generic code, with its info-code', async () => {
    dns.fault('shop.cdn.test', { rcode: 'refused', infoCode: 18 });
    const [error] = (await checkRouting(resolver, input)).errors;
    expect(error).toEqual({
      code: 'dns_extended_error',
      message: `${dns.address} refused to answer for shop.cdn.test (shop.acme.test points there: shop.acme.test → shop.cdn.test) (REFUSED, Extended DNS Error 18 Prohibited): check shop.cdn.test's DNS setup; the check will run again`,
    });
    expect(isDefinitive(error?.code ?? '')).toBe(false);
  });

  it('names the hop of a delegated ownership record that fails', async () => {
    dns.set(TXT_NAME, 'CNAME', 'verify.cdn.test');
    dns.fault('verify.cdn.test', { rcode: 'servfail', infoCode: 7, text: 'signature expired' });
    const result = await checkOwnership(resolver, {
      name: TXT_NAME,
      valuePrefix: 'mixpeek-site-verification=',
      token: TOKEN,
    });
    expect(result.errors).toMatchObject([{ code: 'dnssec_bogus' }]);
    expect(result.errors[0]?.message).toContain(`signatures of verify.cdn.test (${TXT_NAME} points there`);
    expect(result.errors[0]?.message).toContain(
      'Extended DNS Error 7 Signature Expired: "signature expired"',
    );
  });
});

describe('DNS_ERROR_CODES', () => {
  it('holds each code once', () => {
    expect(new Set(DNS_ERROR_CODES).size).toBe(DNS_ERROR_CODES.length);
  });
});
