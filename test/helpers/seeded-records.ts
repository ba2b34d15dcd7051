import type { CertificateRecord, Domain } from '../../src/store/store.js';

/**
 * Store records as the API and the worker leave a served name once all is done, for seeding many
 * at once straight through the store (test/helpers/served-names.ts, bench/lib/seed.ts): an `active`
 * domain verified `now`, and its `issued` certificate. One place to add a field the store gains.
 */
export function activeDomainRecord(
  fields: Pick<Domain, 'id' | 'appId' | 'orgId' | 'name' | 'isPrimary' | 'verificationToken'> & {
    now: string;
  },
): Domain {
  const { now, ...identity } = fields;
  return {
    ...identity,
    status: 'active',
    createdAt: now,
    updatedAt: now,
    verifiedAt: now,
    verifyingSince: null,
    lastCheckedAt: now,
    nextCheckAt: null,
    verificationErrors: [],
    routingObserved: [],
    routingVia: 'dns',
    failureStreak: 0,
    serving: null,
  };
}

export function issuedCertificateRecord(
  fields: Pick<
    CertificateRecord,
    | 'hostname'
    | 'domainId'
    | 'appId'
    | 'issuer'
    | 'certificatePem'
    | 'privateKeyEnc'
    | 'notBefore'
    | 'notAfter'
  > & { now: string },
): CertificateRecord {
  const { now, ...certificate } = fields;
  return {
    ...certificate,
    status: 'issued',
    renewAt: null,
    ariWindowStart: null,
    ariWindowEnd: null,
    ariNextPollAt: null,
    caDirectory: null,
    lastError: null,
    lastErrorCode: null,
    expiryAlertedAt: null,
    failures: 0,
    createdAt: now,
    updatedAt: now,
  };
}
