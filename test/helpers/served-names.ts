import { newId } from '../../src/domain/ids.js';
import type { SecretBox } from '../../src/secrets/secret-box.js';
import type { Store } from '../../src/store/store.js';
import type { TestCa } from './certs.js';
import { activeDomainRecord, issuedCertificateRecord } from './seeded-records.js';

export interface SeededNames {
  orgId: string;
  appId: string;
  slug: string;
  /** Each name's domain id. */
  domainIds: Map<string, string>;
}

/**
 * Many served names at once, straight through the store API (the way the API and the worker leave
 * them, without their DNS checks and orders): one organization, one App on `originUrl`, and each
 * of `names` an `active` domain with a certificate of its own from `ca`, its key sealed with `box`
 * as the certificate service stores it. Written in transactions of a few hundred, so 1,000 names
 * take a second or two (the certificates' key pairs take most of it).
 */
export async function seedServedNames(
  store: Store,
  box: SecretBox,
  ca: TestCa,
  { names, originUrl, org = 'seeded' }: { names: readonly string[]; originUrl: string | null; org?: string },
): Promise<SeededNames> {
  const now = new Date().toISOString();
  const orgId = (await store.ensureOrganization(org, newId('org'), now)).id;
  const appId = newId('app');
  const slug = `seeded-${appId.slice(-8).toLowerCase()}`;
  await store.insertApp({
    id: appId,
    orgId,
    slug,
    title: slug,
    description: null,
    originUrl,
    createdAt: now,
    updatedAt: now,
  });
  const domainIds = new Map<string, string>();
  for (let start = 0; start < names.length; start += 250) {
    const batch = names.slice(start, start + 250);
    const issued = await Promise.all(batch.map((name) => ca.issue([name])));
    await store.transaction(async (tx) => {
      for (const [i, name] of batch.entries()) {
        const certificate = issued[i];
        if (!certificate) continue;
        const domain = activeDomainRecord({
          id: newId('dom'),
          appId,
          orgId,
          name,
          isPrimary: false,
          verificationToken: 'seeded',
          now,
        });
        await tx.insertDomain(domain);
        domainIds.set(name, domain.id);
        await tx.putCertificate(
          issuedCertificateRecord({
            hostname: name,
            domainId: domain.id,
            appId,
            issuer: 'test-ca',
            certificatePem: certificate.certificatePem,
            privateKeyEnc: box.seal(certificate.privateKeyPem),
            notBefore: now,
            notAfter: certificate.notAfter.toISOString(),
            now,
          }),
        );
        await tx.publishServingChange(name);
      }
    });
  }
  return { orgId, appId, slug, domainIds };
}
