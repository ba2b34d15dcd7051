import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startDnsServer, type TestDnsServer } from '../../test/helpers/dns-server.js';
import { WireResolver, type WireResolverOptions } from './wire-resolver.js';
import { parseServer } from './wire-transport.js';

// Short timeouts keep silent-server cases quick; no test asserts elapsed time.
const FAST = { timeoutMs: 200, attempts: 1 } as const;

describe('WireResolver', () => {
  let dns: TestDnsServer;
  const resolver = (options: WireResolverOptions = {}) =>
    new WireResolver({ servers: [dns.address], ...FAST, ...options });

  beforeAll(async () => {
    dns = await startDnsServer();
  });
  afterAll(async () => {
    await dns.close();
  });
  beforeEach(() => {
    dns.clear();
    dns.resetQueries();
  });

  it('joins the strings of each TXT record and returns every record', async () => {
    dns.set('_verify.shop.test', 'TXT', [['site-verification=', 'abc', '123'], 'v=spf1 -all']);
    const result = await resolver().lookup('_verify.shop.test', 'TXT');
    expect(result).toEqual({
      name: '_verify.shop.test',
      type: 'TXT',
      values: ['site-verification=abc123', 'v=spf1 -all'],
      cnameChain: [],
      server: dns.address,
      queries: 1,
    });
  });

  it('reads A, AAAA, NS and SOA records', async () => {
    dns.zone('shop.test');
    dns.set('www.shop.test', 'A', ['192.0.2.1', '192.0.2.2']);
    dns.set('www.shop.test', 'AAAA', '2001:DB8:0:0:0:0:0:1');
    const r = resolver();
    expect((await r.lookup('www.shop.test', 'A')).values).toEqual(['192.0.2.1', '192.0.2.2']);
    expect((await r.lookup('www.shop.test', 'AAAA')).values).toEqual(['2001:db8::1']);
    expect((await r.lookup('shop.test', 'NS')).values).toEqual(['ns1.shop.test']);
    expect((await r.lookup('shop.test', 'SOA')).values).toEqual([
      'ns1.shop.test hostmaster.shop.test 1 3600 600 86400 60',
    ]);
  });

  it('ignores the case and the trailing dot of the name', async () => {
    dns.set('www.shop.test', 'A', '192.0.2.1');
    const result = await resolver().lookup('WWW.Shop.Test.', 'A');
    expect(result.name).toBe('www.shop.test');
    expect(result.values).toEqual(['192.0.2.1']);
  });

  it('sees a record changed between two lookups at once', async () => {
    const r = resolver();
    dns.set('_verify.shop.test', 'TXT', 'old');
    expect((await r.lookup('_verify.shop.test', 'TXT')).values).toEqual(['old']);
    dns.set('_verify.shop.test', 'TXT', 'new');
    expect((await r.lookup('_verify.shop.test', 'TXT')).values).toEqual(['new']);
  });

  it('reports NXDOMAIN for a name without records', async () => {
    dns.set('www.shop.test', 'A', '192.0.2.1');
    const result = await resolver().lookup('_verify.www.shop.test', 'TXT');
    expect(result).toMatchObject({ values: [], failure: 'nxdomain', server: dns.address, queries: 1 });
  });

  it('reports NODATA for a name with other records only, or only records below it', async () => {
    dns.set('www.shop.test', 'A', '192.0.2.1');
    dns.set('_verify.api.shop.test', 'TXT', 'x');
    const r = resolver();
    expect(await r.lookup('www.shop.test', 'TXT')).toMatchObject({ values: [], failure: 'nodata' });
    expect(await r.lookup('api.shop.test', 'A')).toMatchObject({ values: [], failure: 'nodata' });
  });

  it('reports SERVFAIL and REFUSED', async () => {
    dns.set('www.shop.test', 'A', '192.0.2.1');
    dns.fault('www.shop.test', 'servfail');
    expect(await resolver().lookup('www.shop.test', 'A')).toMatchObject({ values: [], failure: 'servfail' });
    dns.fault('www.shop.test', 'refused');
    expect(await resolver().lookup('www.shop.test', 'A')).toMatchObject({ values: [], failure: 'refused' });
    dns.fault('www.shop.test', null);
    expect((await resolver().lookup('www.shop.test', 'A')).values).toEqual(['192.0.2.1']);
  });

  it('reports a timeout when no server answers, after asking `attempts` times', async () => {
    dns.set('www.shop.test', 'A', '192.0.2.1');
    dns.fault('*', 'silence');
    const result = await resolver({ attempts: 3 }).lookup('www.shop.test', 'A');
    expect(result).toMatchObject({ values: [], failure: 'timeout', server: dns.address, queries: 3 });
    expect(dns.queryCount).toBe(3);
  });

  it('reports a server that refuses connections as unreachable', async () => {
    const gone = await startDnsServer();
    await gone.close();
    const result = await resolver({ servers: [gone.address] }).lookup('www.shop.test', 'A');
    expect(result).toMatchObject({ values: [], failure: 'unreachable', server: gone.address });
  });

  it('tries the next server when one is silent', async () => {
    const second = await startDnsServer();
    try {
      dns.fault('*', 'silence');
      second.set('www.shop.test', 'A', '192.0.2.7');
      const result = await resolver({ servers: [dns.address, second.address] }).lookup('www.shop.test', 'A');
      expect(result).toMatchObject({ values: ['192.0.2.7'], server: second.address, queries: 2 });
      expect(dns.queryCount).toBe(1);
      expect(second.queryCount).toBe(1);
    } finally {
      await second.close();
    }
  });

  it("reports a server's error rather than another server's silence", async () => {
    const second = await startDnsServer();
    try {
      dns.fault('*', 'silence');
      second.fault('*', 'servfail');
      const result = await resolver({ servers: [dns.address, second.address] }).lookup('www.shop.test', 'A');
      expect(result).toMatchObject({ failure: 'servfail', server: second.address });
    } finally {
      await second.close();
    }
  });

  it('follows a CNAME chain given in one answer', async () => {
    dns.set('www.shop.test', 'CNAME', 'alias.shop.test');
    dns.set('alias.shop.test', 'CNAME', 'Edge.Shop.Test.');
    dns.set('edge.shop.test', 'A', '192.0.2.1');
    const result = await resolver().lookup('www.shop.test', 'A');
    expect(result).toMatchObject({
      values: ['192.0.2.1'],
      cnameChain: ['alias.shop.test', 'edge.shop.test'],
      queries: 1,
    });
  });

  it("asks on where a CNAME chain leaves the server's zone", async () => {
    dns.zone('shop.test');
    dns.zone('cdn.test');
    dns.set('www.shop.test', 'CNAME', 'edge.cdn.test');
    dns.set('edge.cdn.test', 'A', '192.0.2.1');
    const result = await resolver().lookup('www.shop.test', 'A');
    expect(result).toMatchObject({ values: ['192.0.2.1'], cnameChain: ['edge.cdn.test'], queries: 2 });
    expect(dns.queriesFor('edge.cdn.test', 'A')).toBe(1);
  });

  it('returns the CNAME itself when asked for CNAME', async () => {
    dns.set('www.shop.test', 'CNAME', 'alias.shop.test');
    dns.set('alias.shop.test', 'CNAME', 'edge.shop.test');
    const result = await resolver().lookup('www.shop.test', 'CNAME');
    expect(result).toMatchObject({ values: ['alias.shop.test'], cnameChain: [] });
  });

  it("reports NXDOMAIN and NODATA about the chain's end", async () => {
    dns.set('dangling.shop.test', 'CNAME', 'gone.shop.test');
    dns.set('www.shop.test', 'CNAME', 'edge.shop.test');
    dns.set('edge.shop.test', 'TXT', 'only text here');
    const r = resolver();
    expect(await r.lookup('dangling.shop.test', 'A')).toMatchObject({
      failure: 'nxdomain',
      cnameChain: ['gone.shop.test'],
      queries: 1,
    });
    expect(await r.lookup('www.shop.test', 'A')).toMatchObject({
      failure: 'nodata',
      cnameChain: ['edge.shop.test'],
      queries: 1,
    });
  });

  it('reports a CNAME loop', async () => {
    dns.set('a.shop.test', 'CNAME', 'b.shop.test');
    dns.set('b.shop.test', 'CNAME', 'a.shop.test');
    const result = await resolver().lookup('a.shop.test', 'A');
    expect(result).toMatchObject({
      values: [],
      failure: 'cname_loop',
      cnameChain: ['b.shop.test', 'a.shop.test'],
    });
  });

  it('reports a CNAME chain longer than maxCnameChain as a loop', async () => {
    for (let i = 0; i < 4; i++) dns.set(`h${i}.shop.test`, 'CNAME', `h${i + 1}.shop.test`);
    dns.set('h4.shop.test', 'A', '192.0.2.1');
    expect(await resolver({ maxCnameChain: 4 }).lookup('h0.shop.test', 'A')).toMatchObject({
      values: ['192.0.2.1'],
    });
    expect(await resolver({ maxCnameChain: 3 }).lookup('h0.shop.test', 'A')).toMatchObject({
      values: [],
      failure: 'cname_loop',
    });
  });

  it('asks again over TCP when the UDP answer is truncated', async () => {
    dns.set('_verify.shop.test', 'TXT', 'token');
    dns.fault('*', 'truncate');
    const result = await resolver().lookup('_verify.shop.test', 'TXT');
    expect(result).toMatchObject({ values: ['token'], queries: 2 });
    expect(dns.queries.map((q) => q.transport)).toEqual(['udp', 'tcp']);
  });

  it('gets a TXT set larger than a datagram over TCP', async () => {
    const values = Array.from({ length: 8 }, (_, i) => `${i}:${'x'.repeat(400)}`);
    dns.set('big.shop.test', 'TXT', values);
    const result = await resolver().lookup('big.shop.test', 'TXT');
    expect(result.values).toEqual(values);
    expect(dns.queries.map((q) => q.transport)).toEqual(['udp', 'tcp']);
  });

  it('ignores answers whose id or question does not match the query', async () => {
    dns.set('www.shop.test', 'A', '192.0.2.1');
    dns.fault('www.shop.test', 'spoof');
    const result = await resolver().lookup('www.shop.test', 'A');
    expect(result).toMatchObject({ values: ['192.0.2.1'], queries: 1 });
  });

  it('rejects with the abort reason when aborted, and asks nothing more', async () => {
    dns.fault('*', 'silence');
    const controller = new AbortController();
    const lookup = resolver({ attempts: 5, timeoutMs: 10_000 }).lookup('www.shop.test', 'A', {
      signal: controller.signal,
    });
    await dns.waitForQueries(1);
    controller.abort();
    await expect(lookup).rejects.toMatchObject({ name: 'AbortError' });
    expect(dns.queryCount).toBe(1);

    await expect(
      resolver().lookup('www.shop.test', 'A', { signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    expect(dns.queryCount).toBe(1);
  });

  it('rejects a name that is not a DNS name', async () => {
    await expect(resolver().lookup('a..b', 'A')).rejects.toThrow(TypeError);
    await expect(resolver().lookup(`${'x'.repeat(64)}.test`, 'A')).rejects.toThrow(TypeError);
  });
});

describe('WireResolver in authoritative mode', () => {
  // `recursive` plays the configured recursive server and holds stale data;
  // `authority` plays the zones' name servers (ns1.* resolve to 127.0.0.1).
  let recursive: TestDnsServer;
  let authority: TestDnsServer;
  const resolver = (options: WireResolverOptions = {}) =>
    new WireResolver({
      servers: [recursive.address],
      authoritative: true,
      authoritativePort: authority.port,
      ...FAST,
      ...options,
    });

  beforeAll(async () => {
    [recursive, authority] = await Promise.all([startDnsServer(), startDnsServer()]);
  });
  afterAll(async () => {
    await Promise.all([recursive.close(), authority.close()]);
  });
  beforeEach(() => {
    for (const server of [recursive, authority]) {
      server.clear();
      server.resetQueries();
      server.zone('acme.test');
      server.zone('cdn.test');
    }
  });

  it("asks the zone's name server, with recursion off", async () => {
    recursive.set('_verify.shop.acme.test', 'TXT', 'stale');
    authority.set('_verify.shop.acme.test', 'TXT', 'fresh');
    const result = await resolver().lookup('_verify.shop.acme.test', 'TXT');
    expect(result).toMatchObject({ values: ['fresh'], server: authority.address });
    expect(authority.queries).toEqual([
      { name: '_verify.shop.acme.test', type: 'TXT', transport: 'udp', recursionDesired: false },
    ]);
  });

  it('sees a record the recursive server does not know of yet, and one it still holds as gone', async () => {
    authority.set('_verify.shop.acme.test', 'TXT', 'new');
    recursive.set('www.acme.test', 'A', '192.0.2.1');
    const r = resolver();
    expect((await r.lookup('_verify.shop.acme.test', 'TXT')).values).toEqual(['new']);
    expect(await r.lookup('www.acme.test', 'A')).toMatchObject({ failure: 'nxdomain' });
  });

  it('follows a CNAME into another zone through that zone’s server', async () => {
    for (const server of [recursive, authority]) {
      server.set('shop.acme.test', 'CNAME', 'edge.cdn.test');
      server.set('edge.cdn.test', 'A', '192.0.2.1');
    }
    const result = await resolver().lookup('shop.acme.test', 'A');
    expect(result).toMatchObject({ values: ['192.0.2.1'], cnameChain: ['edge.cdn.test'] });
    expect(authority.queries.map((q) => `${q.name} ${q.type}`)).toEqual([
      'shop.acme.test A',
      'edge.cdn.test A',
    ]);
    // The SOA asked for at the CNAME describes cdn.test, so the zone is found one level up.
    expect(recursive.queriesFor('shop.acme.test', 'SOA')).toBe(1);
    expect(recursive.queriesFor('acme.test', 'SOA')).toBe(1);
  });

  it("remembers a name's zone and servers between lookups, unless told not to", async () => {
    authority.set('www.acme.test', 'A', '192.0.2.1');
    const cached = resolver();
    expect(await cached.lookup('www.acme.test', 'A')).toMatchObject({ values: ['192.0.2.1'], queries: 3 });
    expect(await cached.lookup('www.acme.test', 'A')).toMatchObject({ values: ['192.0.2.1'], queries: 1 });
    const uncached = resolver({ delegationCacheMs: 0 });
    expect(await uncached.lookup('www.acme.test', 'A')).toMatchObject({ queries: 3 });
    expect(await uncached.lookup('www.acme.test', 'A')).toMatchObject({ queries: 3 });
  });

  it("reports the name server's failure", async () => {
    authority.fault('*', 'refused');
    const result = await resolver().lookup('www.acme.test', 'A');
    expect(result).toMatchObject({ failure: 'refused', server: authority.address });
  });

  it('reports the recursive server failing to find the zone', async () => {
    recursive.fault('*', 'servfail');
    const result = await resolver().lookup('www.acme.test', 'A');
    expect(result).toMatchObject({ failure: 'servfail', server: recursive.address });
    expect(authority.queryCount).toBe(0);
  });
});

describe('parseServer', () => {
  it('reads the forms dns.getServers() prints', () => {
    expect(parseServer('1.1.1.1')).toEqual({ host: '1.1.1.1', port: 53, family: 4 });
    expect(parseServer('127.0.0.1:5353')).toEqual({ host: '127.0.0.1', port: 5353, family: 4 });
    expect(parseServer('2606:4700::1111')).toEqual({ host: '2606:4700::1111', port: 53, family: 6 });
    expect(parseServer('[::1]:5353')).toEqual({ host: '::1', port: 5353, family: 6 });
  });

  it('rejects host names and bad ports', () => {
    expect(() => parseServer('dns.example:53')).toThrow(/not an IP address/);
    expect(() => parseServer('1.1.1.1:0')).toThrow(TypeError);
    expect(() => parseServer('1.1.1.1:65536')).toThrow(TypeError);
  });
});
