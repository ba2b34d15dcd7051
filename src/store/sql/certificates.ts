import type { Insertable, Selectable } from 'kysely';
import type { CertificatesTable } from '../schema.js';
import type {
  CertificateRecord,
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
  failures: record.failures,
  created_at: record.createdAt,
  updated_at: record.updatedAt,
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
    async recordCertificateFailure(hostname, error, now) {
      await db
        .updateTable('certificates')
        .set((eb) => ({
          last_error: error,
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
        .set({ last_error: reason, updated_at: now })
        .where('hostname', '=', hostname)
        .execute();
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
