import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtemp, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { type Clock, systemClock } from '../domain/clock.js';
import { ensurePrivateDir, PRIVATE_FILE_MODE } from '../private-files.js';
import { type CertIssuer, checkHostnames, type IssuedCertificate, type IssueOptions } from './issuer.js';

const webcrypto = globalThis.crypto;
const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const;
const HOUR_MS = 3600_000;
const DAY_MS = 24 * HOUR_MS;
/** Clients whose clock runs a little behind still accept a certificate made a moment ago. */
const BACKDATE_MS = HOUR_MS;
const ROOT_VALIDITY_YEARS = 10;
/** X.520 caps a common name at 64 characters; longer names live in the SAN only. */
const MAX_COMMON_NAME = 64;

export interface InternalIssuerOptions {
  /** Portico's data directory; the CA lives in `{dataDir}/ca` (`root.pem` and `root.key`, owner-only). */
  dataDir: string;
  /** Lifetime of issued certificates in days (default 90, like Let's Encrypt's). */
  validityDays?: number;
  clock?: Clock;
}

interface LoadedRoot {
  certificate: x509.X509Certificate;
  pem: string;
  signingKey: CryptoKey;
}

/**
 * Issues certificates from a local CA, for development and for platforms that terminate public TLS
 * elsewhere: browsers accept them once the root (`rootCertificatePem()`) is trusted locally.
 *
 * The CA (ECDSA P-256, valid 10 years) is made on first start in `{dataDir}/ca` and reused on every
 * later start. Processes starting together on one data directory agree on one root: each prepares
 * a complete CA directory under a temporary name and renames it into place, which succeeds for one
 * of them only; all then read the one that won. A crash leaves at most a `.ca-*` directory behind,
 * never a half-written CA.
 *
 * Issued chains hold the leaf alone: there is no intermediate, and the root is of no use to a client
 * that does not already trust it.
 */
export class InternalIssuer implements CertIssuer {
  readonly kind = 'internal';
  /** A local CA signs whatever it is asked: one `*.{apps domain}` certificate serves every app. */
  readonly wildcards = true;

  private constructor(
    private readonly root: LoadedRoot,
    private readonly validityMs: number,
    private readonly clock: Clock,
  ) {}

  /** Loads the CA of `dataDir`, making it first if there is none. */
  static async open(options: InternalIssuerOptions): Promise<InternalIssuer> {
    const validityDays = options.validityDays ?? 90;
    if (!(validityDays > 0)) throw new RangeError(`validityDays must be positive, got ${validityDays}`);
    const clock = options.clock ?? systemClock;
    const caDir = path.join(options.dataDir, 'ca');
    const root = (await loadRoot(caDir)) ?? (await createRoot(options.dataDir, caDir, clock.now()));
    return new InternalIssuer(root, validityDays * DAY_MS, clock);
  }

  /** The root certificate (PEM) to install in a trust store so issued certificates are accepted. */
  rootCertificatePem(): string {
    return this.root.pem;
  }

  async issue(hostnames: string[], options: IssueOptions = {}): Promise<IssuedCertificate> {
    options.signal?.throwIfAborted();
    const names = checkHostnames(hostnames, { wildcards: true });
    const now = this.clock.now().getTime();
    const rootNotAfter = this.root.certificate.notAfter.getTime();
    // A leaf outliving its root would be rejected from the root's expiry on.
    const notAfter = new Date(Math.min(now + this.validityMs, rootNotAfter));
    const notBefore = new Date(now - BACKDATE_MS);
    const keys = await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
    const [first] = names;
    const commonName = first !== undefined && first.length <= MAX_COMMON_NAME ? first : undefined;
    const leaf = await x509.X509CertificateGenerator.create(
      {
        subject: commonName === undefined ? [] : [{ CN: [commonName] }],
        issuer: this.root.certificate.subjectName,
        notBefore,
        notAfter,
        signingAlgorithm: ECDSA_SHA256,
        publicKey: keys.publicKey,
        signingKey: this.root.signingKey,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
          // RFC 5280 4.2.1.6: with an empty subject, the SAN carries the identity and is critical.
          new x509.SubjectAlternativeNameExtension(
            names.map((value) => ({ type: 'dns' as const, value })),
            commonName === undefined,
          ),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, webcrypto),
          await x509.AuthorityKeyIdentifierExtension.create(
            this.root.certificate.publicKey,
            false,
            webcrypto,
          ),
        ],
      },
      webcrypto,
    );
    return {
      certificatePem: pem(leaf.toString('pem')),
      privateKeyPem: await privateKeyPem(keys.privateKey),
      notBefore: leaf.notBefore,
      notAfter: leaf.notAfter,
      issuer: 'internal',
    };
  }
}

/** The CA in `caDir`, or undefined when there is none yet. */
async function loadRoot(caDir: string): Promise<LoadedRoot | undefined> {
  let certPem: string;
  let keyPem: string;
  try {
    [certPem, keyPem] = await Promise.all([
      readFile(path.join(caDir, 'root.pem'), 'utf8'),
      readFile(path.join(caDir, 'root.key'), 'utf8'),
    ]);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const certificate = new X509Certificate(certPem);
  const key = createPrivateKey(keyPem);
  if (!certificate.ca || !certificate.checkPrivateKey(key)) {
    throw new Error(
      `${caDir} does not hold a CA certificate (root.pem) and its key (root.key): restore them, ` +
        'or remove the directory to make a new CA (clients must then trust the new root).',
    );
  }
  const der = key.export({ format: 'der', type: 'pkcs8' });
  return {
    certificate: new x509.X509Certificate(certPem),
    pem: certPem,
    signingKey: await webcrypto.subtle.importKey('pkcs8', der, EC_P256, false, ['sign']),
  };
}

/**
 * Makes a CA and publishes it as `caDir` with one rename; when another process published one first,
 * answers that one instead.
 */
async function createRoot(dataDir: string, caDir: string, now: Date): Promise<LoadedRoot> {
  ensurePrivateDir(dataDir);
  // mkdtemp makes the directory 0700: the key is never readable by others, not even for a moment.
  const staging = await mkdtemp(path.join(dataDir, '.ca-'));
  try {
    const keys = await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
    const notAfter = new Date(now);
    notAfter.setUTCFullYear(notAfter.getUTCFullYear() + ROOT_VALIDITY_YEARS);
    // A name unique to this CA, so a developer can tell roots of several machines apart in a trust store.
    const id = Buffer.from(webcrypto.getRandomValues(new Uint8Array(4))).toString('hex');
    const certificate = await x509.X509CertificateGenerator.createSelfSigned(
      {
        name: [{ CN: [`Portico local CA ${id}`] }, { O: ['Portico (development only)'] }],
        notBefore: new Date(now.getTime() - BACKDATE_MS),
        notAfter,
        signingAlgorithm: ECDSA_SHA256,
        keys,
        extensions: [
          // pathLength 0: this root signs leaves only, never another CA.
          new x509.BasicConstraintsExtension(true, 0, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, webcrypto),
        ],
      },
      webcrypto,
    );
    await writeDurably(
      path.join(staging, 'root.key'),
      await privateKeyPem(keys.privateKey),
      PRIVATE_FILE_MODE,
    );
    // Public, but owner-only like everything in the data directory: clients get it from
    // GET /tls/root.pem, not from the file.
    await writeDurably(path.join(staging, 'root.pem'), pem(certificate.toString('pem')), PRIVATE_FILE_MODE);
    try {
      // Renaming onto an existing non-empty directory fails: the first process to get here wins.
      await rename(staging, caDir);
      await syncDirectory(dataDir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  const root = await loadRoot(caDir);
  if (root === undefined) {
    throw new Error(
      `${caDir} exists but holds no root.pem and root.key: restore them, or remove the directory to make a new CA.`,
    );
  }
  return root;
}

/** Writes a new file and flushes it to disk, so a crash right after the rename cannot leave it empty. */
async function writeDurably(file: string, text: string, mode: number): Promise<void> {
  const handle = await open(file, 'wx', mode);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  return pem(x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY'));
}

/** PEM with a final newline, so PEM blocks concatenate into valid chains. */
function pem(text: string): string {
  return text.endsWith('\n') ? text : `${text}\n`;
}
