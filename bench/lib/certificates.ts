/**
 * Certificates for the edge benchmark. One CA and one SecretBox key are made once (in a template
 * directory) and copied into every Portico data directory of the run, so a certificate issued and
 * sealed once can be stored in several of them.
 */
import { execFileSync, fork } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { InternalIssuer } from '../../src/acme/internal-issuer.js';
import { SecretBox } from '../../src/secrets/secret-box.js';
import type { IssuedCertificateRow } from './issue-process.js';

export type { IssuedCertificateRow } from './issue-process.js';

const here = path.dirname(new URL(import.meta.url).pathname);

/** Makes the CA (`ca/`) and the key that seals private keys (`secret.key`) in `templateDir`. */
export async function prepareCredentials(templateDir: string): Promise<SecretBox> {
  await InternalIssuer.open({ dataDir: templateDir });
  return SecretBox.fromDataDir(templateDir);
}

/**
 * Gives `dataDir` the template's CA and sealing key, as a deployed node has them: Portico then
 * neither makes a CA at start (which the start-time figures would otherwise include) nor fails to
 * open the keys sealed with the template's key.
 */
export function copyCredentials(templateDir: string, dataDir: string): void {
  cpSync(path.join(templateDir, 'ca'), path.join(dataDir, 'ca'), { recursive: true });
  cpSync(path.join(templateDir, 'secret.key'), path.join(dataDir, 'secret.key'));
}

/** One certificate per name from the template's CA, issued by one child process per core. */
export async function issueCertificates(
  templateDir: string,
  names: string[],
): Promise<IssuedCertificateRow[]> {
  const workers = Math.max(1, Math.min(availableParallelism(), 4));
  const slices = Array.from({ length: workers }, (_, w) => names.filter((_, i) => i % workers === w));
  const children = slices.map(() =>
    fork(path.join(here, 'issue-process.ts'), [], { execArgv: ['--import', 'tsx'], stdio: 'inherit' }),
  );
  try {
    const parts = await Promise.all(
      children.map(
        (child, w) =>
          new Promise<IssuedCertificateRow[]>((resolve, reject) => {
            child.once('message', (rows) => resolve(rows as IssuedCertificateRow[]));
            child.once('exit', (code) => reject(new Error(`certificate issuer exited (${code})`)));
            child.send({ dataDir: templateDir, names: slices[w] });
          }),
      ),
    );
    return parts.flat();
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill();
  }
}

export interface CertificateFiles {
  hostname: string;
  certFile: string;
  keyFile: string;
  certificatePem: string;
  privateKeyPem: string;
  notBefore: Date;
  notAfter: Date;
}

/**
 * A certificate for `hostname` from the template's CA, made with openssl, in files for nginx and
 * Caddy. For the name wrk can reach: wrk takes the SNI name from the URL's host, so that host must
 * resolve to 127.0.0.1, and the only such name here is `localhost` (glibc resolves neither
 * `*.localhost` nor any other invented name without /etc/hosts). InternalIssuer, like any CA,
 * refuses a single-label name; openssl signs it with the same CA, key type (ECDSA P-256),
 * signature (SHA-256) and extensions, so the handshake costs what an issued certificate's does.
 */
export function caSignedCertificate(templateDir: string, outDir: string, hostname: string): CertificateFiles {
  const certFile = path.join(outDir, `${hostname}.crt`);
  const keyFile = path.join(outDir, `${hostname}.key`);
  const extFile = path.join(outDir, `${hostname}.ext`);
  writeFileSync(
    extFile,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth',
      `subjectAltName=DNS:${hostname}`,
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid',
    ].join('\n'),
  );
  const csr = execFileSync(
    'openssl',
    [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-subj',
      `/CN=${hostname}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  execFileSync(
    'openssl',
    [
      'x509',
      '-req',
      '-sha256',
      '-days',
      '30',
      '-CA',
      path.join(templateDir, 'ca', 'root.pem'),
      '-CAkey',
      path.join(templateDir, 'ca', 'root.key'),
      '-set_serial',
      `0x${Date.now().toString(16)}`,
      '-extfile',
      extFile,
      '-out',
      certFile,
    ],
    { input: csr, stdio: ['pipe', 'ignore', 'pipe'] },
  );
  const dates = execFileSync('openssl', ['x509', '-noout', '-startdate', '-enddate', '-in', certFile], {
    encoding: 'utf8',
  });
  const date = (field: string) => new Date(new RegExp(`${field}=(.+)`).exec(dates)?.[1] ?? Number.NaN);
  return {
    hostname,
    certFile,
    keyFile,
    certificatePem: readFileSync(certFile, 'utf8'),
    privateKeyPem: readFileSync(keyFile, 'utf8'),
    notBefore: date('notBefore'),
    notAfter: date('notAfter'),
  };
}
