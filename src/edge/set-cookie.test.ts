import { describe, expect, it } from 'vitest';
import { allowedCookieDomain, type CookieScope, scopeSetCookie, scopeSetCookies } from './set-cookie.js';

const APPS = 'apps.portico.test';
/** An App's default hostname, and a customer's domain, under the same apps domain. */
const DEFAULT_HOST: CookieScope = { hostname: 'shop.apps.portico.test', appsDomain: APPS };
const CUSTOM: CookieScope = { hostname: 'www.shop.acme.co.uk', appsDomain: APPS };

describe('allowedCookieDomain', () => {
  it.each([
    // A default hostname keeps only itself.
    [DEFAULT_HOST, 'shop.apps.portico.test', true],
    [DEFAULT_HOST, 'apps.portico.test', false],
    [DEFAULT_HOST, 'portico.test', false],
    [DEFAULT_HOST, 'test', false],
    [DEFAULT_HOST, 'other.apps.portico.test', false],
    [DEFAULT_HOST, 'x.shop.apps.portico.test', false],
    [DEFAULT_HOST, 'acme.co.uk', false],
    // A customer's domain keeps itself and its parents up to (not including) the public suffix.
    [CUSTOM, 'www.shop.acme.co.uk', true],
    [CUSTOM, 'shop.acme.co.uk', true],
    [CUSTOM, 'acme.co.uk', true],
    [CUSTOM, 'co.uk', false],
    [CUSTOM, 'uk', false],
    [CUSTOM, 'op.acme.co.uk', false],
    [CUSTOM, 'hop.acme.co.uk', false],
    [CUSTOM, 'x.www.shop.acme.co.uk', false],
    [CUSTOM, 'apps.portico.test', false],
    [CUSTOM, 'evil.test', false],
    // The private section of the list counts: github.io is a public suffix to browsers.
    [{ hostname: 'docs.tenant.github.io', appsDomain: APPS }, 'tenant.github.io', true],
    [{ hostname: 'docs.tenant.github.io', appsDomain: APPS }, 'github.io', false],
    // A customer's domain beside the apps domain: their common parent would reach every App.
    [{ hostname: 'shop.portico.test', appsDomain: APPS }, 'shop.portico.test', true],
    [{ hostname: 'shop.portico.test', appsDomain: APPS }, 'portico.test', false],
    [{ hostname: 'www.shop.example.com', appsDomain: 'apps.example.com' }, 'shop.example.com', true],
    [{ hostname: 'www.shop.example.com', appsDomain: 'apps.example.com' }, 'example.com', false],
  ])('on %o, Domain=%s allowed: %s', (scope, domain, allowed) => {
    expect(allowedCookieDomain(domain, scope)).toBe(allowed ? domain : undefined);
  });
});

describe('scopeSetCookie', () => {
  it('leaves cookies without a Domain, and allowed ones, byte for byte', () => {
    for (const cookie of [
      'sid=abc',
      'sid=abc; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=3600',
      '__Host-sid=1; Path=/; Secure',
      'sid="quoted value"; Path=/',
      'domain=the-name; Path=/',
      'sid=1; Path=/domain',
      'sid=1; Domain=shop.apps.portico.test; Path=/',
      'sid=1; domain=.Shop.Apps.Portico.Test',
      'sid=1; Expires=Wed, 21 Oct 2099 07:28:00 GMT; Domain=shop.apps.portico.test',
    ]) {
      expect(scopeSetCookie(cookie, DEFAULT_HOST)).toBe(cookie);
    }
  });

  it('removes a wider Domain and keeps every other attribute', () => {
    expect(scopeSetCookie('sid=1; Domain=apps.portico.test; Path=/; Secure; HttpOnly', DEFAULT_HOST)).toBe(
      'sid=1; Path=/; Secure; HttpOnly',
    );
    expect(scopeSetCookie('sid=1;Path=/;Domain=apps.portico.test', DEFAULT_HOST)).toBe('sid=1;Path=/');
    expect(scopeSetCookie('sid=1; Secure; Domain=other.apps.portico.test', DEFAULT_HOST)).toBe(
      'sid=1; Secure',
    );
  });

  it('reads attribute names in any case, with whitespace, and one leading dot', () => {
    for (const attribute of [
      'Domain=apps.portico.test',
      'domain=apps.portico.test',
      'DOMAIN=APPS.PORTICO.TEST',
      'dOmAiN = .apps.portico.test ',
      '\tDomain=.apps.portico.test',
      'Domain=apps.portico.test.',
      'Domain=',
      'Domain',
    ]) {
      expect(scopeSetCookie(`sid=1; ${attribute}; Path=/`, DEFAULT_HOST)).toBe('sid=1; Path=/');
    }
    // Two leading dots are not a domain a browser accepts for this host: removed, host-only.
    expect(scopeSetCookie('sid=1; Domain=..shop.apps.portico.test', DEFAULT_HOST)).toBe('sid=1');
  });

  it('checks every Domain attribute, since browsers use the last one', () => {
    expect(
      scopeSetCookie('sid=1; Domain=shop.apps.portico.test; Path=/; Domain=apps.portico.test', DEFAULT_HOST),
    ).toBe('sid=1; Domain=shop.apps.portico.test; Path=/');
    expect(
      scopeSetCookie('sid=1; Domain=apps.portico.test; Domain=shop.apps.portico.test', DEFAULT_HOST),
    ).toBe('sid=1; Domain=shop.apps.portico.test');
  });

  it('splits at the first semicolon as browsers do, quotes or not', () => {
    // A browser reads `sid="a` as the pair and `Domain=apps.portico.test` as an attribute.
    expect(scopeSetCookie('sid="a; Domain=apps.portico.test; b"; Path=/', DEFAULT_HOST)).toBe(
      'sid="a; b"; Path=/',
    );
    // A value that only mentions a domain is left alone.
    expect(scopeSetCookie('next="Domain=apps.portico.test"', DEFAULT_HOST)).toBe(
      'next="Domain=apps.portico.test"',
    );
  });

  it('rewrites an allowed Domain written in another form to the normalized name that was checked', () => {
    expect(scopeSetCookie('sid=1; Domain=ACME.co.uk.; Path=/', CUSTOM)).toBe(
      'sid=1; Domain=acme.co.uk; Path=/',
    );
    expect(scopeSetCookie('sid=1; Domain=.Acme.CO.uk', CUSTOM)).toBe('sid=1; Domain=.Acme.CO.uk');
    expect(
      scopeSetCookie('sid=1; Domain=bücher.test', { hostname: 'shop.xn--bcher-kva.test', appsDomain: APPS }),
    ).toBe('sid=1; Domain=xn--bcher-kva.test');
  });

  it('keeps a custom domain to itself and its registrable parents', () => {
    expect(scopeSetCookie('a=1; Domain=acme.co.uk; Path=/', CUSTOM)).toBe('a=1; Domain=acme.co.uk; Path=/');
    expect(scopeSetCookie('a=1; Domain=co.uk; Path=/', CUSTOM)).toBe('a=1; Path=/');
    expect(scopeSetCookie('a=1; Domain=apps.portico.test; Path=/', CUSTOM)).toBe('a=1; Path=/');
  });
});

describe('scopeSetCookies', () => {
  it('scopes one value or each of several', () => {
    expect(scopeSetCookies('a=1; Domain=apps.portico.test', DEFAULT_HOST)).toBe('a=1');
    expect(
      scopeSetCookies(['a=1; Domain=apps.portico.test', 'b=2', 'c=3; Domain=test'], DEFAULT_HOST),
    ).toEqual(['a=1', 'b=2', 'c=3']);
  });
});
