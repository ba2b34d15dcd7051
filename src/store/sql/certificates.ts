import { type Insertable, type Selectable, sql } from 'kysely';
import type { CertificateRevocationsTable, CertificatesTable } from '../schema.js';
import type {
  CertificateRecord,
  CertificateRevocation,
  CertificateStatus,
  CertificateStore,
  ChallengeRecordStore,
  SettingStore,
} from '../store.js';
import { type SqlContext, toCount } from './context.js';
import { prepared } from './prepared.js';

const toRecord = (row: Selectable<CertificatesTable>): CertificateRecord => ({
  hostname: row.hostname,
  domainId: row.domain_id,
  appId: row.app_id,
  status: row.status as CertificateStatus,
  issuer: row.issuer,
  certificatePem: row.certificate_pem,
  privateKeyEnc: row.private_key_enc,
  notBefore: row.not_before,
  notAfter: row.not_after,
  renewAt: row.renew_at,
  lastError: row.last_error,
  lastErrorCode: row.last_error_code,
  expiryAlertedAt: row.expiry_alerted_at,
  ariWindowStart: row.ari_window_start,
  ariWindowEnd: row.ari_window_end,
  ariNextPollAt: row.ari_next_poll_at,
  caDirectory: row.ca_directory,
  failures: row.failures,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

const toRow = (record: CertificateRecord): Insertable<CertificatesTable> => ({
  hostname: record.hostname,
  domain_id: record.domainId,
  app_id: record.appId,
  status: record.status,
  issuer: record.issuer,
  certificate_pem: record.certificatePem,
  private_key_enc: record.privateKeyEnc,
  not_before: record.notBefore,
  not_after: record.notAfter,
  renew_at: record.renewAt,
  last_error: record.lastError,
  last_error_code: record.lastErrorCode,
  expiry_alerted_at: record.expiryAlertedAt,
  ari_window_start: record.ariWindowStart,
  ari_window_end: record.ariWindowEnd,
  ari_next_poll_at: record.ariNextPollAt,
  ca_directory: record.caDirectory,
  failures: record.failures,
  created_at: record.createdAt,
  updated_at: record.updatedAt,
});

const toRevocation = (row: Selectable<CertificateRevocationsTable>): CertificateRevocation => ({
  id: row.id,
  hostname: row.hostname,
  issuer: row.issuer,
  certificatePem: row.certificate_pem,
  privateKeyEnc: row.private_key_enc,
  reason: row.reason,
  orgId: row.org_id,
  notAfter: row.not_after,
  caDirectory: row.ca_directory,
  createdAt: row.created_at,
});

// Read by the edge on every name it has not cached.
const certificateByHostname = prepared((db, { hostname }: { hostname: string }) =>
  db.selectFrom('certificates').selectAll().where('hostname', '=', hostname),
);

/** The `settings` row whose lock serializes placing certificate orders (PostgreSQL). */
const ORDER_LOCK_KEY = 'certificate_orders_lock';

export function certificateQueries({ db, caps }: SqlContext): CertificateStore {
  return {
    async lockCertificateOrders() {
      if (!caps.rowLocks) return;
      await db
        .insertInto('settings')
        .values({ key: ORDER_LOCK_KEY, value: '', created_at: new Date(0).toISOString() })
        .onConflict((oc) => oc.column('key').doNothing())
        .execute();
      await db.selectFrom('settings').select('key').where('key', '=', ORDER_LOCK_KEY).forUpdate().execute();
    },
    async findCertificate(hostname) {
      const [row] = (await certificateByHostname(db, { hostname })).rows;
      return row && toRecord(row);
    },
    async listServableCertificates(afterHostname, limit) {
      const rows = await db
        .selectFrom('certificates')
        .selectAll()
        .where('hostname', '>', afterHostname)
        .where('certificate_pem', 'is not', null)
        .where('private_key_enc', 'is not', null)
        .where('not_after', 'is not', null)
        .orderBy('hostname')
        .limit(limit)
        .execute();
      return rows.map(toRecord);
    },
    async findCertificatesByDomainIds(domainIds) {
      if (domainIds.length === 0) return [];
      const rows = await db
        .selectFrom('certificates')
        .selectAll()
        .where('domain_id', 'in', domainIds)
        .execute();
      return rows.map(toRecord);
    },
    async insertCertificateIfAbsent(record) {
      const result = await db
        .insertInto('certificates')
        .values(toRow(record))
        .onConflict((oc) => oc.column('hostname').doNothing())
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
    },
    async putCertificate(record) {
      const values = toRow(record);
      const { hostname: _key, created_at: _created, ...changes } = values;
      await db
        .insertInto('certificates')
        .values(values)
        .onConflict((oc) => oc.column('hostname').doUpdateSet(changes))
        .execute();
    },
    async recordCertificateFailure(hostname, error, now, code = null) {
      await db
        .updateTable('certificates')
        .set((eb) => ({
          last_error: error,
          last_error_code: code,
          failures: eb('failures', '+', 1),
          updated_at: now,
          // A certificate already issued keeps being served while renewal retries.
          status: eb.case().when('certificate_pem', 'is', null).then('failed').else(eb.ref('status')).end(),
        }))
        .where('hostname', '=', hostname)
        .execute();
    },
    async recordCertificateWait(hostname, reason, now) {
      await db
        .updateTable('certificates')
        .set({ last_error: reason, last_error_code: null, updated_at: now })
        .where('hostname', '=', hostname)
        .execute();
    },
    async recordCertificateRenewalInfo(hostname, notAfter, info) {
      const result = await db
        .updateTable('certificates')
        .set({
          ari_window_start: info.ariWindowStart,
          ari_window_end: info.ariWindowEnd,
          ari_next_poll_at: info.ariNextPollAt,
          renew_at: info.renewAt,
        })
        .where('hostname', '=', hostname)
        .where('not_after', '=', notAfter)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
    async deleteCertificate(hostname) {
      await db.deleteFrom('certificates').where('hostname', '=', hostname).execute();
    },
    async deleteCertificatesOfDomain(domainId) {
      const rows = await db
        .deleteFrom('certificates')
        .where('domain_id', '=', domainId)
        .returningAll()
        .execute();
      return rows.map(toRecord);
    },
    async deleteCertificatesOfApp(appId) {
      const rows = await db.deleteFrom('certificates').where('app_id', '=', appId).returningAll().execute();
      return rows.map(toRecord);
    },
    async certificateExpiryStats(soon) {
      const row = await db
        .selectFrom('certificates')
        .select((eb) => [
          eb.fn.min('not_after').as('soonest'),
          eb.fn.sum(eb.case().when('not_after', '<', soon).then(1).else(0).end()).as('soon'),
        ])
        .where('status', '=', 'issued')
        .executeTakeFirst();
      return {
        soonestNotAfter: row?.soonest ?? null,
        expiringSoon: toCount((row?.soon as number | string | null) ?? 0),
      };
    },
    async certificateLifetimeStats(now, fractions) {
      const { epochSeconds } = caps;
      const notAfter = epochSeconds(sql.ref('not_after'));
      // Fraction of the lifetime left; NULL for a lifetime of zero, which no CA issues.
      const left = sql<number>`(${notAfter} - ${epochSeconds(sql.val(now))}) / nullif(${notAfter} - ${epochSeconds(sql.ref('not_before'))}, 0)`;
      const row = await db
        .selectFrom('certificates')
        .select((eb) => [
          eb.fn.min(left).as('least'),
          ...fractions.map((fraction, i) =>
            eb.fn.sum(eb.case().when(left, '<', fraction).then(1).else(0).end()).as(`below${i}`),
          ),
        ])
        .where('status', '=', 'issued')
        .where('not_after', 'is not', null)
        .where('not_before', 'is not', null)
        .executeTakeFirst();
      const values = (row ?? {}) as Record<string, number | string | null>;
      const least = values.least;
      return {
        below: fractions.map((_, i) => toCount(values[`below${i}`] ?? 0)),
        leastLeft: least === null || least === undefined ? null : Number(least),
      };
    },
    async markCertificateExpiryAlerted(hostname, notAfter, now) {
      const result = await db
        .updateTable('certificates')
        .set({ expiry_alerted_at: now })
        .where('hostname', '=', hostname)
        .where('not_after', '=', notAfter)
        .where('expiry_alerted_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
    async insertCertificateRevocation(revocation) {
      await db
        .insertInto('certificate_revocations')
        .values({
          id: revocation.id,
          hostname: revocation.hostname,
          issuer: revocation.issuer,
          certificate_pem: revocation.certificatePem,
          private_key_enc: revocation.privateKeyEnc,
          reason: revocation.reason,
          org_id: revocation.orgId,
          not_after: revocation.notAfter,
          ca_directory: revocation.caDirectory,
          created_at: revocation.createdAt,
        })
        .execute();
    },
    async findCertificateRevocation(id) {
      const row = await db
        .selectFrom('certificate_revocations')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      return row && toRevocation(row);
    },
    async deleteCertificateRevocation(id) {
      const result = await db.deleteFrom('certificate_revocations').where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
    async countCertificateRevocations() {
      const row = await db
        .selectFrom('certificate_revocations')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirst();
      return toCount(row?.n as number | string | undefined);
    },
    async recordCertificateOrder(id, hostname, outcome, now, orgId = null) {
      await db
        .insertInto('certificate_orders')
        .values({ id, hostname, outcome, created_at: now, org_id: orgId })
        .execute();
    },
    async countCertificateOrdersOf(orgId, since, outcome) {
      const row = await db
        .selectFrom('certificate_orders')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('org_id', orgId === null ? 'is' : '=', orgId)
        .where('created_at', '>=', since)
        .where('outcome', '=', outcome)
        .executeTakeFirst();
      return toCount(row?.n as number | string | undefined);
    },
    async countCertificateOrders(since, outcome, hostname) {
      const row = await db
        .selectFrom('certificate_orders')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('created_at', '>=', since)
        .$if(outcome !== undefined, (q) => q.where('outcome', '=', outcome as string))
        .$if(hostname !== undefined, (q) => q.where('hostname', '=', hostname as string))
        .executeTakeFirst();
      return toCount(row?.n as number | string | undefined);
    },
  };
}

export function challengeQueries({ db }: SqlContext): ChallengeRecordStore {
  return {
    async putChallenge(token, keyAuthorization, now) {
      await db
        .insertInto('acme_challenges')
        .values({ token, key_authorization: keyAuthorization, created_at: now })
        .onConflict((oc) => oc.column('token').doUpdateSet({ key_authorization: keyAuthorization }))
        .execute();
    },
    async findChallenge(token) {
      const row = await db
        .selectFrom('acme_challenges')
        .select('key_authorization')
        .where('token', '=', token)
        .executeTakeFirst();
      return row?.key_authorization;
    },
    async deleteChallenge(token) {
      await db.deleteFrom('acme_challenges').where('token', '=', token).execute();
    },
  };
}

export function settingQueries({ db }: SqlContext): SettingStore {
  return {
    async findSetting(key) {
      const row = await db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst();
      return row?.value;
    },
    async putSettingIfAbsent(key, value, now) {
      await db
        .insertInto('settings')
        .values({ key, value, created_at: now })
        .onConflict((oc) => oc.column('key').doNothing())
        .execute();
      const row = await db
        .selectFrom('settings')
        .select('value')
        .where('key', '=', key)
        .executeTakeFirstOrThrow();
      return row.value;
    },
  };
}
