import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { up as idempotencySealed } from '../../../src/store/migrations/0011-idempotency-sealed.js';
import { openApi, type TestApi } from '../../helpers/api.js';
import { openStoreWithSql, type StoreWithSql } from '../../helpers/raw-sql.js';
import { backends } from '../../helpers/stores.js';

/** What an Idempotency-Key keeps on disk, read with plain SQL beside the store, on both stores. */
describe.each(backends)('kept Idempotency-Key answers on $name', (backend) => {
  let db: StoreWithSql;
  let api: TestApi;
  let key: string;

  beforeAll(async () => {
    db = await openStoreWithSql(backend.name);
    // Shipped defaults: a receiver on a public name is accepted without PORTICO_ALLOW_PRIVATE_ORIGINS.
    api = await openApi(db.store);
    key = await api.keyFor('idempotent-secrets');
  });
  afterAll(async () => {
    await api.close();
    await db.close();
  });

  const createWebhook = (body: unknown, idempotencyKey: string) =>
    api.app.inject({
      method: 'POST',
      url: '/v1/webhooks',
      headers: {
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        'idempotency-key': idempotencyKey,
      },
      payload: JSON.stringify(body),
    });

  const keptAnswers = async (idempotencyKey: string) =>
    (
      await db.query(
        `SELECT response_status, response_body FROM idempotency_keys WHERE key = '${idempotencyKey}'`,
      )
    ).map((row) => ({ status: Number(row.response_status), body: String(row.response_body) }));

  it.each([
    ['given by the client', { secret: 'whsec_chosen-by-the-client-0123456789' }],
    ['generated', {}],
  ])('keeps a webhook secret %s sealed, and a repeat still shows it', async (_, extra) => {
    const idempotencyKey = `webhook-${Object.keys(extra).length}`;
    const body = { url: 'https://hooks.example.com/portico', events: ['domain.verified'], ...extra };
    const first = await createWebhook(body, idempotencyKey);
    expect(first.statusCode).toBe(200);
    const { secret, webhook_id } = first.json();
    expect(secret).toMatch(/.{16,}/);

    const kept = await keptAnswers(idempotencyKey);
    expect(kept).toHaveLength(1);
    expect(kept[0]?.status).toBe(200);
    // Neither the secret nor anything else of the answer is readable in the row.
    expect(kept[0]?.body).not.toContain(secret);
    expect(kept[0]?.body).not.toContain(webhook_id);

    const again = await createWebhook(body, idempotencyKey);
    expect(again.statusCode).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.headers['content-type']).toContain('application/json');
    expect(again.json()).toEqual(first.json());
    // Created once: the repeat changed nothing.
    const listed = (await api.call(key, 'GET', '/v1/webhooks?limit=1000')).json().results;
    expect(listed.filter((hook: { webhook_id: string }) => hook.webhook_id === webhook_id)).toHaveLength(1);
  });

  it('forgets answers kept in plain text before the upgrade, and keeps sealed ones', async () => {
    await createWebhook({ url: 'https://hooks.example.com/sealed' }, 'sealed-before');
    const now = new Date().toISOString();
    await db.query(
      `INSERT INTO idempotency_keys (org_id, key, request_hash, response_status, response_body, created_at)
       VALUES ('org_legacy', 'plain-before', 'h', 200, '{"webhook_id":"wh_1","secret":"whsec_legacy-plain-text"}', '${now}')`,
    );
    // The upgrade: the migration that sealed answers, run on the answers kept before it.
    await db.runMigration(idempotencySealed);
    expect(await keptAnswers('plain-before')).toEqual([]);
    expect(await keptAnswers('sealed-before')).toHaveLength(1);
  });
});
