import { describe, expect, it } from 'vitest';
import { challengeLabel } from './dns-records.js';

describe('challengeLabel', () => {
  it('is a DNS label of 20 base32 characters', () => {
    for (let i = 0; i < 200; i++) {
      expect(challengeLabel(`org_${i}`, `shop${i}.acme.com`)).toMatch(/^[a-z2-7]{20}$/);
    }
  });

  it('is the same for the same organization and name, whenever it is asked', () => {
    expect(challengeLabel('org_a', 'acme.com')).toBe(challengeLabel('org_a', 'acme.com'));
  });

  it('differs between organizations claiming one name, and between one organization’s names', () => {
    const labels = new Set([
      challengeLabel('org_a', 'acme.com'),
      challengeLabel('org_b', 'acme.com'),
      challengeLabel('org_a', 'shop.acme.com'),
      challengeLabel('org_a', 'acme.co'),
      // The separator keeps the organization and the name apart: no pair spells another pair.
      challengeLabel('org_a\u0000acme', 'com'),
    ]);
    expect(labels.size).toBe(5);
  });

  it('is shared by a wildcard claim and the exact claim of its base name, whose delegation is one CNAME', () => {
    expect(challengeLabel('org_a', '*.acme.com')).toBe(challengeLabel('org_a', 'acme.com'));
    expect(challengeLabel('org_b', '*.acme.com')).not.toBe(challengeLabel('org_a', '*.acme.com'));
  });

  it('reads the digest five bits at a time, as RFC 4648 base32 does', () => {
    // A fixed value, so a change of derivation (which would break every customer's CNAME) fails here.
    // The same as Python's base64.b32encode(sha256(b'portico dns-01 delegation\0org_example\0acme.com')),
    // lowercased, first 20 characters.
    expect(challengeLabel('org_example', 'acme.com')).toBe('pfps5gmh765xiuylj73f');
  });
});
