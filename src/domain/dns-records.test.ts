import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import {
  challengeLabel,
  delegatesDns01,
  delegationRecord,
  ownershipRecordName,
  requiredDnsRecords,
  routingCheckName,
} from './dns-records.js';

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

describe('the certificate delegation among the records to create', () => {
  const settings = (env: Record<string, string>) => loadConfig({ PORTICO_DNS_SERVERS: '127.0.0.1', ...env });

  it('is asked for when Portico answers DNS-01 in its zone, with the claim’s label', () => {
    const config = settings({
      PORTICO_ACME_DNS_ZONE: 'acme.platform.test',
      PORTICO_ACME_CHALLENGE: 'dns-01,http-01',
    });
    const records = requiredDnsRecords('shop.acme.com', 'token', 'org_a', config);
    expect(records.map((r) => r.purpose)).toEqual(['ownership', 'routing', 'certificate']);
    expect(records[2]).toEqual({
      type: 'CNAME',
      name: '_acme-challenge.shop.acme.com',
      value: `${challengeLabel('org_a', 'shop.acme.com')}.acme.platform.test`,
      purpose: 'certificate',
    });
    // Another organization's claim on the name is delegated elsewhere.
    expect(requiredDnsRecords('shop.acme.com', 'token', 'org_b', config)[2]?.value).not.toBe(
      records[2]?.value,
    );
  });

  it('is not asked for without the zone, or when DNS-01 is not among the challenges', () => {
    expect(requiredDnsRecords('shop.acme.com', 't', 'org_a', settings({})).map((r) => r.purpose)).toEqual([
      'ownership',
      'routing',
    ]);
    const zoneOnly = settings({ PORTICO_ACME_DNS_ZONE: 'acme.platform.test' });
    expect(delegationRecord('org_a', 'shop.acme.com', zoneOnly)).toBeUndefined();
  });
});

describe('the records of a wildcard claim', () => {
  const config = loadConfig({
    PORTICO_DNS_SERVERS: '127.0.0.1',
    PORTICO_ACME_DNS_ZONE: 'acme.platform.test',
    PORTICO_ACME_CHALLENGE: 'dns-01',
    PORTICO_EDGE_IPV4: '203.0.113.10',
  });

  it('hangs the ownership TXT and the delegation from its base, and routes the wildcard name by CNAME', () => {
    expect(requiredDnsRecords('*.acme.com', 'tok', 'org_a', config)).toEqual([
      {
        type: 'TXT',
        name: '_mixpeek-verify.acme.com',
        value: 'mixpeek-site-verification=tok',
        purpose: 'ownership',
      },
      // Never A records, though its base is an apex and the edge has addresses.
      { type: 'CNAME', name: '*.acme.com', value: config.cnameTarget, purpose: 'routing' },
      {
        type: 'CNAME',
        name: '_acme-challenge.acme.com',
        value: `${challengeLabel('org_a', 'acme.com')}.acme.platform.test`,
        purpose: 'certificate',
      },
    ]);
    expect(ownershipRecordName('_mixpeek-verify', '*.shop.acme.com')).toBe('_mixpeek-verify.shop.acme.com');
  });

  it('is available exactly where a delegation is asked for', () => {
    expect(delegatesDns01(config)).toBe(true);
    const noZone = loadConfig({ PORTICO_DNS_SERVERS: '127.0.0.1', PORTICO_ACME_CHALLENGE: 'http-01' });
    expect(delegatesDns01(noZone)).toBe(false);
    expect(delegatesDns01({ acmeDnsZone: 'acme.platform.test', acmeChallengeTypes: ['http-01'] })).toBe(
      false,
    );
  });

  it('is checked for routing at a fresh random name one label under its base each time', () => {
    const names = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const name = routingCheckName('*.acme.com');
      expect(name).toMatch(/^[a-z2-7]{16}\.acme\.com$/);
      names.add(name);
    }
    expect(names.size).toBe(50);
    expect(routingCheckName('shop.acme.com')).toBe('shop.acme.com');
  });
});
