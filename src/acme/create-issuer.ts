import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Resolver } from '../dns/resolver.js';
import type { Clock } from '../domain/clock.js';
import type { SecretBox } from '../secrets/secret-box.js';
import type { Store } from '../store/store.js';
import { storeAccountKeys, storeChallenges, storeDnsChallenges } from './certificates.js';
import { InternalIssuer } from './internal-issuer.js';
import type { CertIssuer } from './issuer.js';

/**
 * The issuer PORTICO_TLS_ISSUER names, or undefined for `none`. `caaResolver` is where an ACME
 * issuer reads CAA records before ordering.
 */
export async function createIssuer(
  config: Config,
  store: Store,
  box: SecretBox,
  clock: Clock,
  logger: Logger,
  caaResolver?: Resolver,
): Promise<CertIssuer | undefined> {
  switch (config.tlsIssuer) {
    case 'none':
      return undefined;
    case 'internal':
      return InternalIssuer.open({ dataDir: config.dataDir, clock });
    case 'acme': {
      if (config.acmeCaFile) readFileSync(config.acmeCaFile); // fail at start, not at the first order
      // Loaded here, not above: acme-client costs a process about 40 MB, and one that runs the
      // internal issuer (or none) never needs it.
      const [{ AcmeIssuer }, { FailoverIssuer }] = await Promise.all([
        import('./acme-issuer.js'),
        import('./ca-failover.js'),
      ]);
      const acmeLogger = logger.child({ part: 'acme' });
      const cas = config.acmeCas.map(
        (ca, i) =>
          new AcmeIssuer({
            directoryUrl: ca.directoryUrl,
            externalAccountBinding: ca.eab,
            email: config.acmeEmail,
            caFile: config.acmeCaFile,
            challengeTypes: config.acmeChallengeTypes,
            // Each CA its own account; the first keeps the one stored before there could be several.
            accountKeys: storeAccountKeys(store, box, clock, ca.directoryUrl, i === 0),
            challenges: storeChallenges(store, clock),
            dnsChallenges: storeDnsChallenges(store, clock),
            caaResolver,
            profile: config.acmeProfile,
            logger: config.acmeCas.length > 1 ? acmeLogger.child({ ca: ca.directoryUrl }) : acmeLogger,
          }),
      );
      // A profile a CA does not offer fails the start, naming the ones it does.
      for (const ca of cas) await ca.checkDirectory(AbortSignal.timeout(30_000));
      const [only] = cas;
      return cas.length === 1 && only ? only : new FailoverIssuer(cas, acmeLogger);
    }
  }
}
