/**
 * A child process of the edge benchmark that issues certificates with Portico's InternalIssuer
 * (ECDSA P-256, from the CA in `dataDir`) and seals their keys with the data directory's SecretBox,
 * as the issuing worker stores them. Issuing costs milliseconds of CPU each: the benchmark runs one
 * of these per core. Receives `{ dataDir, names }`, answers with one `IssuedCertificateRow` per
 * name, and exits.
 */
import { InternalIssuer } from '../../src/acme/internal-issuer.js';
import { SecretBox } from '../../src/secrets/secret-box.js';

export interface IssuedCertificateRow {
  hostname: string;
  certificatePem: string;
  privateKeyEnc: string;
  notBefore: string;
  notAfter: string;
}

interface Request {
  dataDir: string;
  names: string[];
}

/** Issues in flight at once: webcrypto's key generation and signing run on libuv's threads. */
const IN_FLIGHT = 4;

process.once('message', async ({ dataDir, names }: Request) => {
  const issuer = await InternalIssuer.open({ dataDir });
  const box = SecretBox.fromDataDir(dataDir);
  const rows: IssuedCertificateRow[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < names.length) {
        const hostname = names[next++] as string;
        const issued = await issuer.issue([hostname]);
        rows.push({
          hostname,
          certificatePem: issued.certificatePem,
          privateKeyEnc: box.seal(issued.privateKeyPem),
          notBefore: issued.notBefore.toISOString(),
          notAfter: issued.notAfter.toISOString(),
        });
      }
    }),
  );
  process.send?.(rows, () => process.exit(0));
});
