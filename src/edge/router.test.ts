import { describe, expect, it } from 'vitest';
import { beforeRoute, decide, hostnameOf } from './router.js';
import type { EdgeRoute } from './sources.js';

const ROUTE: EdgeRoute = { hostname: 'shop.acme.test', appId: 'app_1', originUrl: 'https://origin.test/' };

describe('hostnameOf', () => {
  it.each([
    ['shop.acme.test', 'shop.acme.test'],
    ['Shop.Acme.Test:8443', 'shop.acme.test'],
    ['shop.acme.test.:443', 'shop.acme.test'],
    ['bücher.test', 'xn--bcher-kva.test'],
    ['[::1]:8443', '::1'],
    ['', undefined],
    [undefined, undefined],
  ])('%s → %s', (host, expected) => {
    expect(hostnameOf(host)).toBe(expected);
  });
});

describe('beforeRoute', () => {
  it('names the hostname to look up when the route decides', () => {
    expect(beforeRoute('https', 'shop.acme.test', 'shop.acme.test', '/a?b=1')).toBe('shop.acme.test');
    expect(beforeRoute('http', 'shop.acme.test', undefined, '/a')).toBe('shop.acme.test');
  });

  it('answers 421 when an HTTPS Host is not the SNI name', () => {
    expect(beforeRoute('https', 'other.acme.test', 'shop.acme.test', '/')).toEqual({
      action: 'reject',
      status: 421,
      reason: 'misdirected',
    });
  });

  it('answers an ACME challenge over HTTP whatever the Host, with no route lookup', () => {
    expect(
      beforeRoute('http', 'pending.acme.test', undefined, '/.well-known/acme-challenge/Ab-9_z?x'),
    ).toEqual({
      action: 'challenge',
      token: 'Ab-9_z',
    });
    expect(beforeRoute('http', undefined, undefined, '/.well-known/acme-challenge/tok')).toEqual({
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
      expect(beforeRoute('http', 'x.test', undefined, target)).toMatchObject({
        status: 404,
        reason: 'bad-challenge-token',
      });
    }
  });

  it('proxies the challenge path over HTTPS like any other path', () => {
    expect(beforeRoute('https', 'shop.acme.test', 'shop.acme.test', '/.well-known/acme-challenge/tok')).toBe(
      'shop.acme.test',
    );
  });

  it('answers 404 without a Host and 400 for a target that is not a path', () => {
    expect(beforeRoute('http', undefined, undefined, '/')).toMatchObject({
      status: 404,
      reason: 'unknown-host',
    });
    expect(beforeRoute('http', 'shop.acme.test', undefined, 'http://shop.acme.test/')).toMatchObject({
      status: 400,
    });
    expect(beforeRoute('https', 'shop.acme.test', 'shop.acme.test', '*')).toMatchObject({ status: 400 });
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
