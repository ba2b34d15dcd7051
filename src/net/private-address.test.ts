import { describe, expect, it } from 'vitest';
import { parseTenantUrl } from '../domain/origin-url.js';
import { isPrivateAddress } from './private-address.js';

/** Addresses a tenant's origin or webhook may use with the shipped defaults. */
const PUBLIC = [
  // IPv4, including each private range's neighbours
  '8.8.8.8',
  '1.1.1.1',
  '9.255.255.255',
  '11.0.0.1',
  '100.63.255.255',
  '100.128.0.0',
  '126.255.255.255',
  '128.0.0.1',
  '169.253.255.255',
  '169.255.0.1',
  '172.15.255.255',
  '172.32.0.0',
  '192.0.1.1',
  '192.167.255.255',
  '192.169.0.0',
  '198.17.255.255',
  '198.20.0.0',
  '223.255.255.255',
  // documentation ranges: routed nowhere, so allowed (the end-to-end test serves from 203.0.113.0/24)
  '192.0.2.1',
  '198.51.100.7',
  '203.0.113.2',
  '2001:db8::1',
  '3fff::1',
  // IPv6 global unicast
  '2606:4700:4700::1111',
  '2001:4860:4860::8888',
  '2001:200::1',
  '2a00:1450:4001:80b::200e',
  // IPv4-mapped, dotted and hex, judged by the IPv4 address
  '::ffff:8.8.8.8',
  '::ffff:808:808',
  '::FFFF:CB00:7102',
  // NAT64 well-known prefix (what DNS64 answers for an IPv4-only name), judged by the IPv4 address
  '64:ff9b::8.8.8.8',
  '64:ff9b::808:808',
  // 6to4, judged by the IPv4 address in bits 16-47
  '2002:808:808::1',
  '2002:cb00:7102::',
];

/** Addresses refused with the shipped defaults. */
const PRIVATE = [
  // IPv4
  '0.0.0.0',
  '0.1.2.3',
  '10.0.0.1',
  '10.255.255.255',
  '100.64.0.1',
  '100.127.255.255',
  '127.0.0.1',
  '127.255.255.254',
  '169.254.169.254',
  '172.16.0.1',
  '172.31.255.255',
  '192.0.0.8',
  '192.168.1.1',
  '198.18.0.1',
  '198.19.255.255',
  '224.0.0.1',
  '239.255.255.250',
  '240.0.0.1',
  '255.255.255.255',
  // IPv6 outside global unicast
  '::',
  '::1',
  '::127.0.0.1', // IPv4-compatible (deprecated)
  '::8.8.8.8',
  '100::1', // discard-only
  '64:ff9b:1::a00:1', // local-use NAT64
  'fc00::1', // unique-local
  'fd12:3456:789a::1',
  'fe80::1', // link-local
  'FE80::1',
  'febf:ffff::1',
  'fec0::1', // site-local (deprecated)
  'feff::1',
  'ff02::1', // multicast
  'ff0e::1',
  // IETF protocol assignments in global unicast: Teredo, benchmarking
  '2001::1',
  '2001:0:4136:e378:8000:63bf:3fff:fdd2',
  '2001:2::1',
  // IPv4-mapped, dotted and hex
  '::ffff:127.0.0.1',
  '::ffff:7f00:1',
  '::ffff:10.0.0.1',
  '::ffff:a00:1',
  '::ffff:169.254.169.254',
  '::ffff:a9fe:a9fe',
  '::ffff:0.0.0.0',
  '::ffff:0:0',
  // NAT64 well-known prefix
  '64:ff9b::127.0.0.1',
  '64:ff9b::7f00:1',
  '64:ff9b::a9fe:a9fe',
  '64:ff9b::c0a8:101',
  // 6to4
  '2002:7f00:1::1',
  '2002:a00:1::',
  '2002:c0a8:101::1',
  '2002:a9fe:a9fe::1',
];

const asUrl = (address: string) => (address.includes(':') ? `http://[${address}]/` : `http://${address}/`);

const refusals = {
  invalid: (reason: string) => new Error(`invalid: ${reason}`),
  private: () => new Error('private'),
};

describe('isPrivateAddress', () => {
  it.each(PUBLIC)('%s is public', (address) => {
    expect(isPrivateAddress(address)).toBe(false);
  });

  it.each(PRIVATE)('%s is private', (address) => {
    expect(isPrivateAddress(address)).toBe(true);
  });

  it('judges a link-local address with a zone, and leaves names to the connect-time check', () => {
    expect(isPrivateAddress('fe80::1%eth0')).toBe(true);
    expect(isPrivateAddress('example.com')).toBe(false);
    expect(isPrivateAddress('localhost')).toBe(false);
  });
});

describe('parseTenantUrl with private addresses refused (the default)', () => {
  it.each(PUBLIC)('accepts http://%s/', (address) => {
    expect(parseTenantUrl(asUrl(address), false, refusals)).toMatch(/^http:\/\//);
  });

  it.each(PRIVATE)('refuses http://%s/', (address) => {
    expect(() => parseTenantUrl(asUrl(address), false, refusals)).toThrow('private');
  });

  it.each([
    'http://0x7f.1/',
    'http://2130706433/',
    'http://017700000001/',
    'http://127.1:8080/',
    'http://localhost/',
    'http://LOCALHOST:3000/',
    'http://localhost./',
    'http://api.localhost/',
  ])('refuses %s, another spelling of a local address', (url) => {
    expect(() => parseTenantUrl(url, false, refusals)).toThrow('private');
  });

  it('accepts names, which are judged when connecting, and normalizes the URL', () => {
    expect(parseTenantUrl(' https://Origin.Example.com:8443/base ', false, refusals)).toBe(
      'https://origin.example.com:8443/base',
    );
    expect(parseTenantUrl('http://8.8.8.8:8080/x?y=1', false, refusals)).toBe('http://8.8.8.8:8080/x?y=1');
  });

  it('accepts every address when the operator allows private ones', () => {
    for (const address of [...PRIVATE, ...PUBLIC]) {
      expect(parseTenantUrl(asUrl(address), true, refusals)).toMatch(/^http:\/\//);
    }
    expect(parseTenantUrl('http://localhost:3000/', true, refusals)).toBe('http://localhost:3000/');
  });
});
