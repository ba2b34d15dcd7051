import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { describe, expect, it } from 'vitest';
import { ariCertId, certIdOf, parseRenewalInfo, serialDer } from './ari.js';

/** RFC 9773 section 4.1's example: this keyIdentifier and serial give this certID. */
const RFC_KEY_IDENTIFIER = '69885b6b87464041e1b37b847ba0ae2cde01c8d8';
const RFC_CERT_ID = 'aYhba4dGQEHhs3uEe6CuLN4ByNg.AIdlQyE';

/** A certificate with the RFC example's Authority Key Identifier and serial, signed by a throwaway key. */
async function certificateWith(keyIdentifierHex: string, serialHex: string): Promise<string> {
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256' } as const;
  const keys = (await webcrypto.subtle.generateKey(algorithm, false, ['sign', 'verify'])) as CryptoKeyPair;
  const certificate = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialHex,
      subject: 'CN=ari.example',
      issuer: 'CN=Throwaway test issuer',
      notBefore: new Date('2026-01-01T00:00:00Z'),
      notAfter: new Date('2026-02-01T00:00:00Z'),
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      extensions: [new x509.AuthorityKeyIdentifierExtension(keyIdentifierHex)],
    },
    webcrypto as Crypto,
  );
  return certificate.toString('pem');
}

describe('ARI certificate identifier', () => {
  it("matches RFC 9773's example from its parts", () => {
    expect(certIdOf(Buffer.from(RFC_KEY_IDENTIFIER, 'hex'), serialDer('87654321'))).toBe(RFC_CERT_ID);
  });

  it('keeps the DER serial minimal: a zero byte before a top bit set, none otherwise', () => {
    expect(Buffer.from(serialDer('87654321')).toString('hex')).toBe('0087654321');
    expect(Buffer.from(serialDer('0087654321')).toString('hex')).toBe('0087654321');
    expect(Buffer.from(serialDer('00007f01')).toString('hex')).toBe('7f01');
    expect(Buffer.from(serialDer('abc')).toString('hex')).toBe('0abc');
    expect(Buffer.from(serialDer('00')).toString('hex')).toBe('00');
  });

  it("reads the RFC example's certID out of a certificate (the leaf of a chain)", async () => {
    const pem = await certificateWith(RFC_KEY_IDENTIFIER, '0087654321');
    expect(ariCertId(pem)).toBe(RFC_CERT_ID);
    const other = await certificateWith('0102030405', '01');
    expect(ariCertId(`${pem}\n${other}`)).toBe(RFC_CERT_ID);
    expect(ariCertId(other)).toBe('AQIDBAU.AQ');
  });

  it('refuses a certificate without an Authority Key Identifier, with a stable code', async () => {
    const algorithm = { name: 'ECDSA', namedCurve: 'P-256' } as const;
    const keys = (await webcrypto.subtle.generateKey(algorithm, false, ['sign', 'verify'])) as CryptoKeyPair;
    const bare = await x509.X509CertificateGenerator.createSelfSigned(
      { serialNumber: '01', name: 'CN=bare', keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } },
      webcrypto as Crypto,
    );
    expect(() => ariCertId(bare.toString('pem'))).toThrow(expect.objectContaining({ code: 'unknown' }));
  });
});

describe('parseRenewalInfo', () => {
  it('reads the suggested window and the explanation', () => {
    const info = parseRenewalInfo(
      'id',
      {
        suggestedWindow: { start: '2026-03-01T00:00:00Z', end: '2026-03-03T00:00:00Z' },
        explanationURL: 'https://ca.example/incident',
      },
      3600,
    );
    expect(info).toEqual({
      certId: 'id',
      window: { start: new Date('2026-03-01T00:00:00Z'), end: new Date('2026-03-03T00:00:00Z') },
      retryAfterSeconds: 3600,
      explanationUrl: 'https://ca.example/incident',
    });
  });

  it('refuses a window that is missing or ends before it starts (RFC 9773 section 4.2)', () => {
    for (const body of [
      {},
      null,
      { suggestedWindow: { start: 'soon' } },
      { suggestedWindow: { start: '2026-03-03T00:00:00Z', end: '2026-03-01T00:00:00Z' } },
    ]) {
      expect(() => parseRenewalInfo('id', body, undefined)).toThrow(
        expect.objectContaining({ code: 'server_error' }),
      );
    }
  });
});
