import type { Migration, MigrationProvider } from 'kysely';
import * as initial from './0001-initial.js';
import * as certificates from './0002-certificates.js';
import * as webhooks from './0003-webhooks.js';
import * as idempotency from './0004-idempotency.js';
import * as organizationDomainCount from './0005-organization-domain-count.js';
import * as historyRetention from './0006-history-retention.js';
import * as listOrderIndexes from './0007-list-order-indexes.js';
import * as oneLiveClaim from './0008-one-live-claim.js';
import * as jobOrganization from './0009-job-organization.js';
import * as tenancyLimits from './0010-tenancy-limits.js';
import * as idempotencySealed from './0011-idempotency-sealed.js';
import * as dnsChallenges from './0012-dns-challenges.js';
import * as routingVia from './0013-routing-via.js';
import * as certificateLifecycle from './0015-certificate-lifecycle.js';
import * as renewalInformation from './0017-renewal-information.js';
import * as servingProbes from './0018-serving-probes.js';

/**
 * Every migration, in order. Listed here rather than read from the folder so that a bundled or
 * type-stripped build finds them too. Append only: a released migration never changes.
 */
const migrations: Record<string, Migration> = {
  '0001-initial': initial,
  '0002-certificates': certificates,
  '0003-webhooks': webhooks,
  '0004-idempotency': idempotency,
  '0005-organization-domain-count': organizationDomainCount,
  '0006-history-retention': historyRetention,
  '0007-list-order-indexes': listOrderIndexes,
  '0008-one-live-claim': oneLiveClaim,
  '0009-job-organization': jobOrganization,
  '0010-tenancy-limits': tenancyLimits,
  '0011-idempotency-sealed': idempotencySealed,
  '0012-dns-challenges': dnsChallenges,
  '0013-routing-via': routingVia,
  '0015-certificate-lifecycle': certificateLifecycle,
  '0017-renewal-information': renewalInformation,
  '0018-serving-probes': servingProbes,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
