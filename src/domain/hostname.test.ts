import { describe, expect, it } from 'vitest';
import { PorticoError } from './errors.js';
import { normalizeHostname, parseCustomerHostname } from './hostname.js';

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
