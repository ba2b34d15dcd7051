import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { ConfigError } from '../config.js';
import type { Clock } from '../domain/clock.js';
import type { Store } from '../store/store.js';
import { AcmeIssuer } from './acme-issuer.js';
import { storeAccountKeys, storeChallenges } from './certificates.js';
import { InternalIssuer } from './internal-issuer.js';
import type { CertIssuer } from './issuer.js';
import { SecretBox } from './secret-box.js';

/**
 * The key that encrypts private keys at rest. The embedded default keeps one in the data
 * directory; several nodes on PostgreSQL must share one, or each could not read the others' keys.
 */
export function openSecretBox(config: Pick<Config, 'encryptionKey' | 'databaseUrl' | 'dataDir'>): SecretBox {
  if (config.encryptionKey) return SecretBox.fromText(config.encryptionKey);
  if (config.databaseUrl) {
    throw new ConfigError(
      'PORTICO_ENCRYPTION_KEY is required with DATABASE_URL: every node must encrypt and decrypt private keys with the same key (32 bytes, base64: `openssl rand -base64 32`)',
    );
  }
  return SecretBox.fromDataDir(config.dataDir);
}

/** The issuer PORTICO_TLS_ISSUER names, or undefined for `none`. */
export async function createIssuer(
  config: Config,
  store: Store,
  box: SecretBox,
  clock: Clock,
  logger: Logger,
): Promise<CertIssuer | undefined> {
  switch (config.tlsIssuer) {
    case 'none':
      return undefined;
    case 'internal':
      return InternalIssuer.open({ dataDir: config.dataDir, clock });
    case 'acme':
      if (config.acmeCaFile) readFileSync(config.acmeCaFile); // fail at start, not at the first order
      return new AcmeIssuer({
        directoryUrl: config.acmeDirectory,
        email: config.acmeEmail,
        caFile: config.acmeCaFile,
        challengeTypes: config.acmeChallengeTypes,
        accountKeys: storeAccountKeys(store, box, clock),
        challenges: storeChallenges(store, clock),
        logger: logger.child({ part: 'acme' }),
      });
  }
}
