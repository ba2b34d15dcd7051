import { describe, expect, it } from 'vitest';
import { PorticoError } from './errors.js';
import {
  claimBase,
  coveringWildcard,
  isWildcard,
  normalizeHostname,
  parseCustomerHostname,
} from './hostname.js';

const policy = { appsDomain: 'apps.example.net' };
const codeOf = (input: string) => {
  try {
    parseCustomerHostname(input, policy);
    return 'accepted';
  } catch (error) {
    return error instanceof PorticoError ? error.code : String(error);
  }
};

/**
 * Unicode names convert as browsers convert them (UTS #46, non-transitional, bidi and joiner rules),
 * the same on every Node version: Node 20's url.domainToASCII maps `ß` to `ss` and accepts labels
 * that mix right-to-left and left-to-right letters, which Node 24 and browsers refuse. Each case
 * here was seen to differ between the two runtimes' domainToASCII.
 */
describe('Unicode hostnames', () => {
  it.each([
    ['bücher.example.com', 'xn--bcher-kva.example.com'],
    ['Bücher.Example.COM.', 'xn--bcher-kva.example.com'],
    ['ẞ.com', 'xn--zca.com'],
    ['straße.de', 'xn--strae-oqa.de'],
    ['ｓｈｏｐ．ａｃｍｅ．ｃｏｍ', 'shop.acme.com'],
  ])('%s becomes %s, as a browser sends it', (input, expected) => {
    expect(normalizeHostname(input)).toBe(expected);
    expect(parseCustomerHostname(input, policy)).toBe(expected);
  });

  it.each([
    ['a mixed-direction label', 'aא.com'],
    ['a label starting with a combining mark', '\u0301a.com'],
    ['a joiner outside the context that allows it', 'a\u200db.com'],
  ])('refuses %s with domain_invalid', (_what, input) => {
    expect(codeOf(input)).toBe('domain_invalid');
  });

  it('refuses a symbol, and an A-label that is not valid punycode, whatever url.domainToASCII of the runtime says', () => {
    expect(codeOf('a☃b.com')).toBe('domain_label_invalid');
    expect(codeOf('xn--zz.acme.com')).toBe('domain_label_invalid');
  });
});

/**
 * Wildcard claims (issue 15): `*.` and a claimable name, only where DNS-01 is available (the
 * policy's `wildcards`), never on a public suffix, and `*` nowhere else.
 */
describe('wildcard claims', () => {
  const withDns01 = { ...policy, wildcards: true };
  const wildcardCodeOf = (input: string, p: typeof policy & { wildcards?: boolean }) => {
    try {
      return parseCustomerHostname(input, p);
    } catch (error) {
      return error instanceof PorticoError ? error.code : String(error);
    }
  };

  it.each([
    ['*.acme.com', '*.acme.com'],
    [' *.Shop.ACME.com. ', '*.shop.acme.com'],
    ['*.bücher.de', '*.xn--bcher-kva.de'],
    ['*.acme.co.uk', '*.acme.co.uk'],
  ])('accepts %s as %s where DNS-01 is available', (input, expected) => {
    expect(parseCustomerHostname(input, withDns01)).toBe(expected);
  });

  it('refuses a well-formed wildcard with domain_wildcard_not_supported without DNS-01', () => {
    expect(wildcardCodeOf('*.acme.com', policy)).toBe('domain_wildcard_not_supported');
    expect(wildcardCodeOf('*.acme.com', { ...policy, wildcards: false })).toBe(
      'domain_wildcard_not_supported',
    );
  });

  it.each(['*.com', '*.co.uk', '*.github.io', '*.test', '*.'])(
    'refuses the public suffix wildcard %s with domain_is_public_suffix, with DNS-01 or without',
    (input) => {
      expect(wildcardCodeOf(input, withDns01)).toBe('domain_is_public_suffix');
      expect(wildcardCodeOf(input, policy)).toBe('domain_is_public_suffix');
    },
  );

  it.each(['a.*.acme.com', '*foo.acme.com', 'foo*.acme.com', '*.*.acme.com', '**.acme.com', '*', 'acme.*'])(
    'refuses %s with domain_invalid: "*" is only ever the whole first label',
    (input) => {
      expect(wildcardCodeOf(input, withDns01)).toBe('domain_invalid');
      expect(wildcardCodeOf(input, policy)).toBe('domain_invalid');
    },
  );

  it('checks the base as any name: reserved, under the apps domain, bad labels, too long', () => {
    expect(wildcardCodeOf('*.shop.localhost', withDns01)).toBe('domain_reserved');
    expect(wildcardCodeOf('*.x.apps.example.net', withDns01)).toBe('domain_under_apps_domain');
    expect(wildcardCodeOf('*.-bad.acme.com', withDns01)).toBe('domain_label_invalid');
    expect(wildcardCodeOf('*.1.2.3.4', withDns01)).toBe('domain_is_ip_address');
    const long = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(56)}.com`;
    expect(long.length).toBe(252);
    expect(wildcardCodeOf(long, withDns01)).toBe(long);
    expect(wildcardCodeOf(`*.${long}`, withDns01)).toBe('domain_too_long');
  });
});

describe('what a wildcard claim covers', () => {
  it('covers each name exactly one label below its base, and no other', () => {
    expect(coveringWildcard('x.acme.com')).toBe('*.acme.com');
    expect(coveringWildcard('a.b.acme.com')).toBe('*.b.acme.com');
    expect(coveringWildcard('acme.com')).toBeUndefined();
    expect(coveringWildcard('com')).toBeUndefined();
  });

  it('hangs its records from its base', () => {
    expect(isWildcard('*.acme.com')).toBe(true);
    expect(isWildcard('acme.com')).toBe(false);
    expect(claimBase('*.acme.com')).toBe('acme.com');
    expect(claimBase('shop.acme.com')).toBe('shop.acme.com');
  });
});
