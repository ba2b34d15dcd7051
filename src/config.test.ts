import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

describe('PORTICO_ACME_CHALLENGE', () => {
  const challenge = (value: string | undefined) =>
    loadConfig({ PORTICO_ACME_CHALLENGE: value, PORTICO_DNS_SERVERS: '127.0.0.1' }).acmeChallengeTypes;

  it('defaults to http-01', () => {
    expect(challenge(undefined)).toEqual(['http-01']);
    expect(challenge(' ')).toEqual(['http-01']);
  });

  it('takes one type, or a list in order of preference', () => {
    expect(challenge('tls-alpn-01')).toEqual(['tls-alpn-01']);
    expect(challenge('tls-alpn-01,http-01')).toEqual(['tls-alpn-01', 'http-01']);
    expect(challenge(' HTTP-01 , tls-alpn-01 ,http-01')).toEqual(['http-01', 'tls-alpn-01']);
  });

  it.each([
    ['dns-01', 'dns-01'],
    ['http-01,tls-alpn', 'tls-alpn'],
    ['http01', 'http01'],
  ])('rejects %j, naming the wrong type and the ones it takes', (value, wrong) => {
    const load = () => challenge(value);
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(
      `PORTICO_ACME_CHALLENGE: unknown ACME challenge type "${wrong}": use http-01 or tls-alpn-01, or both ` +
        'in order of preference ("tls-alpn-01,http-01")',
    );
  });
});
