import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../config-error.js';
import { ensurePrivateDir, PRIVATE_FILE_MODE } from '../private-files.js';

/**
 * The key that encrypts secrets at rest. The embedded default keeps one in the data directory;
 * several nodes on PostgreSQL must share one, or each could not read the others' secrets.
 */
export function openSecretBox(config: {
  encryptionKey: string | undefined;
  databaseUrl: string | undefined;
  dataDir: string;
}): SecretBox {
  if (config.encryptionKey) return SecretBox.fromText(config.encryptionKey);
  if (config.databaseUrl) {
    throw new ConfigError(
      'PORTICO_ENCRYPTION_KEY is required with DATABASE_URL: every node must encrypt and decrypt private keys with the same key (32 bytes, base64: `openssl rand -base64 32`)',
    );
  }
  return SecretBox.fromDataDir(config.dataDir);
}

/**
 * Encryption at rest for what must be read back but never stored in plain text: private keys
 * (certificates' and the ACME account's), webhook signing secrets, kept idempotent answers.
 * AES-256-GCM with a fresh 96-bit nonce per value, so the store, its backups and its replicas hold
 * only ciphertext.
 * Stored form: `v1.<nonce>.<ciphertext>.<tag>`, each part base64url; the version names the scheme
 * so the key or the algorithm can change later.
 */
export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  /** A 32-byte key given as base64 or hex (PORTICO_ENCRYPTION_KEY). */
  static fromText(text: string): SecretBox {
    const trimmed = text.trim();
    const key = /^[0-9a-f]{64}$/i.test(trimmed)
      ? Buffer.from(trimmed, 'hex')
      : Buffer.from(trimmed, 'base64');
    if (key.length !== 32) throw new Error('PORTICO_ENCRYPTION_KEY must be 32 bytes, as base64 or hex');
    return new SecretBox(key);
  }

  /**
   * The key kept in `{dataDir}/secret.key` (mode 0600), created on first use: the embedded default
   * needs no setup. Several nodes must instead share PORTICO_ENCRYPTION_KEY.
   */
  static fromDataDir(dataDir: string): SecretBox {
    const file = path.join(dataDir, 'secret.key');
    try {
      return SecretBox.fromText(readFileSync(file, 'utf8'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    ensurePrivateDir(dataDir);
    try {
      // 'wx': when two processes start together, one creates the file and the other reads it.
      writeFileSync(file, randomBytes(32).toString('base64'), { flag: 'wx', mode: PRIVATE_FILE_MODE });
      chmodSync(file, PRIVATE_FILE_MODE);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    return SecretBox.fromText(readFileSync(file, 'utf8'));
  }

  seal(plaintext: string): string {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v1', nonce, body, cipher.getAuthTag()]
      .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
      .join('.');
  }

  /**
   * A key of its own for one `purpose` (HKDF-SHA256 of this one), for what every node must compute
   * alike without it ever being stored, such as the edge's answer to a routing proof
   * (domain/routing-proof.ts). A purpose's key reveals nothing of the sealing key or of another's.
   */
  deriveKey(purpose: string): Buffer {
    return Buffer.from(hkdfSync('sha256', this.key, Buffer.alloc(0), `portico:${purpose}`, 32));
  }

  /** Throws when the value was not sealed with this key or was altered. */
  open(sealed: string): string {
    const [version, nonce, body, tag] = sealed.split('.');
    if (version !== 'v1' || !nonce || body === undefined || !tag) throw new Error('not a sealed value');
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(nonce, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString(
      'utf8',
    );
  }
}
