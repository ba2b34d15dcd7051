import { describe, expect, it } from 'vitest';
import type { Route } from '../domain/serving.js';
import { beforeRoute, decide, parseAuthority, parseHost } from './router.js';

const ROUTE: Route = { hostname: 'shop.acme.test', appId: 'app_1', originUrl: 'https://origin.test/' };

/** `rawHeaders` as Node hands them over: name, value, name, value… */
const withHost = (...values: string[]) => values.flatMap((value) => ['Host', value]);
const host = (hostname: string) => ({ hostname, port: undefined });

describe('parseHost', () => {
  it.each([
    ['shop.acme.test', 'shop.acme.test', undefined],
    ['Shop.Acme.Test:8443', 'shop.acme.test', 8443],
    ['shop.acme.test.:443', 'shop.acme.test', 443],
    ['shop.acme.test:00443', 'shop.acme.test', 443],
    ['shop.acme.test:65535', 'shop.acme.test', 65535],
    ['bücher.test', 'xn--bcher-kva.test', undefined],
    ['localhost', 'localhost', undefined],
    ['203.0.113.9:80', '203.0.113.9', 80],
    ['[::1]:8443', '::1', 8443],
    ['[2001:DB8::1]', '2001:db8::1', undefined],
  ])('accepts %s as %s, port %s', (value, hostname, port) => {
    expect(parseHost(withHost(value))).toEqual({ hostname, port });
  });

  it.each([
    'shop.acme.com:@evil.com',
    'shop.acme.com:443@evil.com',
    'user@shop.acme.com',
    'shop.acme.com:',
    'shop.acme.com:0',
    'shop.acme.com:65536',
    'shop.acme.com:123456',
    'shop.acme.com:+443',
    'shop.acme.com: 443',
    'shop.acme.com:443:443',
    'shop.acme.com/evil',
    'shop.acme.com?x',
    'shop.acme.com#x',
    'shop.acme.com\\evil.com',
    'shop acme.com',
    'shop.acme.com :443',
    'shop..acme.com',
    '.shop.acme.com',
    'shop.acme.com..',
    '.',
    '-shop.acme.com',
    'shop-.acme.com',
    'shop_acme.com',
    `${'a'.repeat(64)}.acme.com`,
    `${'a.'.repeat(127)}com`,
    '[::1',
    '[not-ipv6]:443',
    '[::1]x',
    '[::1]:0',
    '::1',
  ])('refuses %s', (value) => {
    expect(parseHost(withHost(value))).toBe('invalid');
  });

  it('refuses a second Host header, same value or not, whatever its case', () => {
    expect(parseHost(withHost('shop.acme.test', 'shop.acme.test'))).toBe('invalid');
    expect(parseHost(['host', 'shop.acme.test', 'Accept', '*/*', 'HOST', 'evil.test'])).toBe('invalid');
  });

  it('finds the Host among other headers, and none when it is missing or empty', () => {
    expect(parseHost(['Accept', '*/*', 'x-hoster', 'no', 'hOsT', 'shop.acme.test'])).toEqual(
      host('shop.acme.test'),
    );
    expect(parseHost(['Accept', '*/*'])).toBe('none');
    expect(parseHost(withHost(''))).toBe('none');
  });
});

describe('parseAuthority (HTTP/2)', () => {
  it('takes :authority, checked as a Host is, or the Host header when there is none', () => {
    expect(parseAuthority([':method', 'GET', ':authority', 'Shop.Acme.Test.:8443'])).toEqual({
      hostname: 'shop.acme.test',
      port: 8443,
    });
    expect(parseAuthority([':method', 'GET', 'host', 'shop.acme.test'])).toEqual(host('shop.acme.test'));
    expect(parseAuthority([':method', 'GET', ':path', '/'])).toBe('none');
    for (const bad of ['shop.acme.com:@evil.com', 'evil.com@shop.acme.com', 'shop.acme.com:0', '']) {
      expect(parseAuthority([':authority', bad]), bad).toBe('invalid');
    }
  });

  it('accepts a Host that names what :authority names, and refuses one that names anything else', () => {
    expect(parseAuthority([':authority', 'shop.acme.test', 'host', 'SHOP.acme.test.'])).toEqual(
      host('shop.acme.test'),
    );
    expect(parseAuthority([':authority', 'shop.acme.test', 'host', 'evil.test'])).toBe('invalid');
    expect(parseAuthority([':authority', 'shop.acme.test', 'host', 'shop.acme.test:8443'])).toBe('invalid');
    expect(parseAuthority([':authority', 'shop.acme.test', 'host', 'shop.acme.test:@evil.com'])).toBe(
      'invalid',
    );
    expect(parseAuthority(['host', 'shop.acme.test', 'host', 'shop.acme.test'])).toBe('invalid');
    expect(parseAuthority([':authority', 'a.test', ':authority', 'a.test'])).toBe('invalid');
  });
});

describe('beforeRoute', () => {
  it('names the hostname to look up when the route decides', () => {
    expect(beforeRoute('https', host('shop.acme.test'), 'shop.acme.test', '/a?b=1')).toBe('shop.acme.test');
    expect(beforeRoute('http', host('shop.acme.test'), undefined, '/a')).toBe('shop.acme.test');
  });

  it('answers 421 when an HTTPS Host is not the SNI name', () => {
    expect(beforeRoute('https', host('other.acme.test'), 'shop.acme.test', '/')).toEqual({
      action: 'reject',
      status: 421,
      reason: 'misdirected',
    });
  });

  it('answers an ACME challenge over HTTP whatever the Host, with no route lookup', () => {
    expect(
      beforeRoute('http', host('pending.acme.test'), undefined, '/.well-known/acme-challenge/Ab-9_z?x'),
    ).toEqual({
      action: 'challenge',
      token: 'Ab-9_z',
    });
    expect(beforeRoute('http', 'none', undefined, '/.well-known/acme-challenge/tok')).toEqual({
      action: 'challenge',
      token: 'tok',
    });
  });

  it('refuses a malformed challenge token', () => {
    for (const target of [
      '/.well-known/acme-challenge/',
      '/.well-known/acme-challenge/a/b',
      '/.well-known/acme-challenge/a.b',
    ]) {
      expect(beforeRoute('http', host('x.test'), undefined, target)).toMatchObject({
        status: 404,
        reason: 'bad-challenge-token',
      });
    }
  });

  it('answers a routing proof for the Host, over HTTP and HTTPS, with no route lookup', () => {
    const nonce = 'n'.repeat(32);
    const target = `/.well-known/portico-routing/${nonce}`;
    const proof = { action: 'routing-proof', hostname: 'shop.acme.test', nonce };
    expect(beforeRoute('http', host('shop.acme.test'), undefined, target)).toEqual(proof);
    expect(beforeRoute('https', host('shop.acme.test'), 'shop.acme.test', `${target}?x=1`)).toEqual(proof);
    // The SNI name decides over HTTPS, as for every request: another name is misdirected.
    expect(beforeRoute('https', host('other.acme.test'), 'shop.acme.test', target)).toMatchObject({
      status: 421,
    });
    expect(beforeRoute('http', 'none', undefined, target)).toMatchObject({
      status: 404,
      reason: 'unknown-host',
    });
  });

  it('refuses a malformed routing-proof nonce', () => {
    for (const nonce of ['', 'short', 'a/b'.repeat(10), 'x'.repeat(65), `${'a'.repeat(30)}.b`]) {
      expect(
        beforeRoute('http', host('x.test'), undefined, `/.well-known/portico-routing/${nonce}`),
      ).toMatchObject({
        status: 404,
        reason: 'bad-proof-nonce',
      });
    }
  });

  it('proxies the challenge path over HTTPS like any other path', () => {
    expect(
      beforeRoute('https', host('shop.acme.test'), 'shop.acme.test', '/.well-known/acme-challenge/tok'),
    ).toBe('shop.acme.test');
  });

  it('answers 404 without a Host and 400 for a target that is not a path', () => {
    expect(beforeRoute('http', 'none', undefined, '/')).toMatchObject({
      status: 404,
      reason: 'unknown-host',
    });
    expect(beforeRoute('http', host('shop.acme.test'), undefined, 'http://shop.acme.test/')).toMatchObject({
      status: 400,
    });
    expect(beforeRoute('https', host('shop.acme.test'), 'shop.acme.test', '*')).toMatchObject({
      status: 400,
    });
  });

  it('refuses an absolute-form target whether or not its authority agrees with the Host', () => {
    for (const target of ['https://shop.acme.test/', 'https://evil.test/', 'http://shop.acme.test:80/x']) {
      expect(beforeRoute('https', host('shop.acme.test'), 'shop.acme.test', target)).toMatchObject({
        status: 400,
        reason: 'bad-request-target',
      });
    }
  });

  it('answers 400 for a bad Host over either scheme, the ACME challenge path included', () => {
    for (const target of ['/', '/.well-known/acme-challenge/tok']) {
      expect(beforeRoute('http', 'invalid', undefined, target)).toMatchObject({
        status: 400,
        reason: 'bad-host',
      });
    }
    expect(beforeRoute('https', 'invalid', 'shop.acme.test', '/')).toMatchObject({
      status: 400,
      reason: 'bad-host',
    });
  });

  it('routes an HTTPS request without a Host (HTTP/1.0) by its SNI name', () => {
    expect(beforeRoute('https', 'none', 'shop.acme.test', '/')).toBe('shop.acme.test');
  });
});

describe('decide', () => {
  it('proxies a served host over HTTPS', () => {
    expect(decide('https', 'shop.acme.test', '/a', ROUTE, 443)).toEqual({ action: 'proxy' });
  });

  it('answers 404 for a host with no route, over either scheme', () => {
    expect(decide('https', 'shop.acme.test', '/', undefined, 443)).toMatchObject({ status: 404 });
    expect(decide('http', 'shop.acme.test', '/', undefined, 443)).toMatchObject({ status: 404 });
  });

  it('redirects HTTP to HTTPS with 308, keeping path and query, and the port unless 443', () => {
    expect(decide('http', 'shop.acme.test', '/a/b?c=1&d', ROUTE, 443)).toEqual({
      action: 'redirect',
      location: 'https://shop.acme.test/a/b?c=1&d',
    });
    expect(decide('http', 'shop.acme.test', '/', ROUTE, 8443)).toEqual({
      action: 'redirect',
      location: 'https://shop.acme.test:8443/',
    });
  });

  it('redirects a non-primary domain to the primary, keeping path and query', () => {
    const secondary = { ...ROUTE, hostname: 'www.acme.test', redirectTo: 'shop.acme.test' };
    expect(decide('https', 'www.acme.test', '/p?q=1', secondary, 443)).toEqual({
      action: 'redirect',
      location: 'https://shop.acme.test/p?q=1',
    });
  });

  it('never redirects a name to itself', () => {
    const looping = { ...ROUTE, redirectTo: 'shop.acme.test' };
    expect(decide('https', 'shop.acme.test', '/', looping, 443)).toEqual({ action: 'proxy' });
  });

  it('answers 502 for an App without an origin', () => {
    expect(decide('https', 'shop.acme.test', '/', { ...ROUTE, originUrl: null }, 443)).toMatchObject({
      status: 502,
      reason: 'no-origin',
    });
  });
});
