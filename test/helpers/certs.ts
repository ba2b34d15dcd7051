/**
 * A throwaway certificate authority for tests: a self-signed root and leaf certificates for any
 * names, ECDSA P-256 (what ACME CAs issue by default), made in memory with @peculiar/x509 over
 * Node's WebCrypto. Clients trust `ca.certificatePem` (the `ca` option, curl's `--cacert`).
 */
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as Crypto);

const KEY_ALGORITHM: EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const RSA_KEY_ALGORITHM: RsaHashedKeyGenParams = {
  name: 'RSASSA-PKCS1-v1_5',
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: 'SHA-256',
};
const SIGNING_ALGORITHM: EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const HOUR_MS = 3_600_000;

export interface TestCertificate {
  /** The leaf, then the CA (as a server sends its chain). */
  certificatePem: string;
  /** PKCS#8 PEM. */
  privateKeyPem: string;
  notAfter: Date;
}

export interface TestCa {
  certificatePem: string;
  /**
   * A server certificate whose SANs are `names` (DNS names). Its key is ECDSA P-256, or RSA 2048
   * with `key: 'rsa'` (Portico issues only ECDSA; RSA shows what the edge's TLS allows with one).
   */
  issue(
    names: readonly string[],
    options?: { notAfter?: Date; key?: 'ecdsa' | 'rsa' },
  ): Promise<TestCertificate>;
}

export async function createTestCa(commonName = 'Portico Test CA'): Promise<TestCa> {
  const keys = await generateKeys();
  const now = Date.now();
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${commonName}`,
    notBefore: new Date(now - HOUR_MS),
    notAfter: new Date(now + 24 * HOUR_MS),
    signingAlgorithm: SIGNING_ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const rootPem = root.toString('pem');

  return {
    certificatePem: rootPem,
    async issue(names, options = {}) {
      const leafKeys = await generateKeys(options.key === 'rsa' ? RSA_KEY_ALGORITHM : KEY_ALGORITHM);
      const notAfter = options.notAfter ?? new Date(Date.now() + 24 * HOUR_MS);
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: randomSerial(),
        subject: `CN=${names[0] ?? 'test'}`,
        issuer: root.subject,
        notBefore: new Date(Date.now() - HOUR_MS),
        notAfter,
        signingAlgorithm: SIGNING_ALGORITHM,
        publicKey: leafKeys.publicKey,
        signingKey: keys.privateKey,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
          new x509.SubjectAlternativeNameExtension(names.map((value) => ({ type: 'dns' as const, value }))),
          await x509.AuthorityKeyIdentifierExtension.create(keys.publicKey),
        ],
      });
      const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', leafKeys.privateKey);
      return {
        certificatePem: `${leaf.toString('pem')}\n${rootPem}\n`,
        privateKeyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY'),
        notAfter,
      };
    },
  };
}

function generateKeys(
  algorithm: EcKeyGenParams | RsaHashedKeyGenParams = KEY_ALGORITHM,
): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
}

/** 16 random bytes, the high bit cleared so the DER integer stays positive. */
function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return Buffer.from(bytes).toString('hex');
}
