import { domainToUnicode } from 'node:url';
import { describe, expect, it } from 'vitest';
import { decodePunycode, encodePunycode, isValidALabel } from './punycode.js';

describe('punycode', () => {
  // RFC 3492 section 7.1 samples (lowercased where the RFC's mixed case is only an annotation).
  it.each([
    ['ليهمابتكلموشعربي؟', 'egbpdaj6bu4bxfgehfvwxn'],
    ['他们为什么不说中文', 'ihqwcrb4cv8a8dqg056pqjye'],
    ['Pročprostěnemluvíčesky', 'Proprostnemluvesky-uyb24dma41a'],
    ['למההםפשוטלאמדבריםעברית', '4dbcagdahymbxekheh6e0a7fei0b'],
    ['यहलोगहिन्दीक्योंनहींबोलसकतेहैं', 'i1baa7eci9glrd9b2ae1bj0hfcgg6iyaf8o0a1dig0cd'],
    ['安室奈美恵-with-SUPER-MONKEYS', '-with-SUPER-MONKEYS-pc58ag80a8qai00g7n9n'],
    ['bücher', 'bcher-kva'],
  ])('encodes %s as %s and decodes it back', (unicode, encoded) => {
    expect(encodePunycode(unicode)).toBe(encoded);
    expect(decodePunycode(encoded)).toBe(unicode);
  });

  it.each(['zz', '-', '9999999999999', 'bcher-kv!', 'ü-abc'])('refuses to decode %j', (input) => {
    expect(decodePunycode(input) || undefined).toBeUndefined();
  });
});

describe('isValidALabel', () => {
  it.each(['xn--bcher-kva', 'xn--mnchen-3ya', 'xn--55qx5d', 'xn--nxa', 'xn--caf-dma', 'xn--9ca'])(
    'accepts %s',
    (label) => {
      expect(isValidALabel(label)).toBe(true);
      // What Node makes of it agrees: a real label of a real script.
      expect(domainToUnicode(`${label}.com`)).not.toBe(`${label}.com`);
    },
  );

  it.each([
    ['xn--zz', 'does not decode'],
    ['xn--a', 'decodes to a control character (U+0080)'],
    ['xn--', 'is empty'],
    ['xn--abc-', 'decodes to plain ASCII, which is written without xn--'],
    ['xn--ls8h', 'is an emoji, which IDNA2008 disallows'],
    ['xn--ab--cd-', 'decodes to ASCII with hyphens in positions 3 and 4'],
    ['xn--bcher-kvA', 'is not lowercase'],
    ['xn---ida', 'decodes (to ñ) but encodes back as xn--ida: two spellings of one name'],
    ['xn--uber-vwc', 'decodes to a name not in NFC (u and a combining diaeresis)'],
    ['xn--ber-ska', 'decodes to uppercase (Über)'],
    ['xn--ab-7tb', 'starts with a combining mark'],
    ['xn--ssa', 'is a combining mark alone'],
    ['ab--cd', 'is not an xn-- label'],
  ])('refuses %s: it %s', (label) => {
    expect(isValidALabel(label)).toBe(false);
  });
});
