import type { Selectable } from 'kysely';
import type { EventsTable, WebhookDeliveriesTable, WebhooksTable } from '../schema.js';
import type { DeliveryStatus, EventRecord, Webhook, WebhookDelivery, WebhookStore } from '../store.js';
import { listPage, type SqlContext } from './context.js';

const toWebhook = (row: Selectable<WebhooksTable>): Webhook => ({
  id: row.id,
  orgId: row.org_id,
  url: row.url,
  events: JSON.parse(row.events),
  secretEnc: row.secret_enc,
  createdAt: row.created_at,
});

const toDelivery = (row: Selectable<WebhookDeliveriesTable>): WebhookDelivery => ({
  id: row.id,
  webhookId: row.webhook_id,
  eventId: row.event_id,
  status: row.status as DeliveryStatus,
  attempts: row.attempts,
  responseStatus: row.response_status,
  lastError: row.last_error,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

const toEvent = (row: Selectable<EventsTable>): EventRecord => ({
  id: row.id,
  orgId: row.org_id,
  type: row.type,
  payload: JSON.parse(row.payload),
  createdAt: row.created_at,
});

export function webhookQueries({ db }: SqlContext): WebhookStore {
  return {
    async insertEvent(event) {
      await db
        .insertInto('events')
        .values({
          id: event.id,
          org_id: event.orgId,
          type: event.type,
          payload: JSON.stringify(event.payload),
          created_at: event.createdAt,
        })
        .execute();
    },
    async findEvent(id) {
      const row = await db.selectFrom('events').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toEvent(row);
    },
    async findEvents(ids) {
      if (ids.length === 0) return [];
      const rows = await db.selectFrom('events').selectAll().where('id', 'in', ids).execute();
      return rows.map(toEvent);
    },
    async insertWebhook(webhook) {
      await db
        .insertInto('webhooks')
        .values({
          id: webhook.id,
          org_id: webhook.orgId,
          url: webhook.url,
          events: JSON.stringify(webhook.events),
          secret_enc: webhook.secretEnc,
          created_at: webhook.createdAt,
        })
        .execute();
    },
    async findWebhook(orgId, id) {
      const row = await db
        .selectFrom('webhooks')
        .selectAll()
        .where('org_id', '=', orgId)
        .where('id', '=', id)
        .executeTakeFirst();
      return row && toWebhook(row);
    },
    async findWebhookById(id) {
      const row = await db.selectFrom('webhooks').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toWebhook(row);
    },
    listWebhooks(orgId, page) {
      return listPage(db.selectFrom('webhooks').where('org_id', '=', orgId), page, toWebhook);
    },
    async deleteWebhook(orgId, id) {
      const result = await db
        .deleteFrom('webhooks')
        .where('org_id', '=', orgId)
        .where('id', '=', id)
        .executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
    async insertDelivery(delivery) {
      await db
        .insertInto('webhook_deliveries')
        .values({
          id: delivery.id,
          webhook_id: delivery.webhookId,
          event_id: delivery.eventId,
          status: delivery.status,
          attempts: delivery.attempts,
          response_status: delivery.responseStatus,
          last_error: delivery.lastError,
          created_at: delivery.createdAt,
          updated_at: delivery.updatedAt,
        })
        .execute();
    },
    async findDelivery(id) {
      const row = await db
        .selectFrom('webhook_deliveries')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      return row && toDelivery(row);
    },
    async deleteWebhookHistoryBefore(cutoff, limit) {
      const deliveries = await db
        .deleteFrom('webhook_deliveries')
        .where('id', 'in', (eb) =>
          eb
            .selectFrom('webhook_deliveries')
            .select('id')
            .where('created_at', '<', cutoff)
            .where('status', '!=', 'pending')
            .orderBy('created_at')
            .limit(limit),
        )
        .executeTakeFirst();
      const events = await db
        .deleteFrom('events')
        .where('id', 'in', (eb) =>
          eb
            .selectFrom('events')
            .select('id')
            .where('created_at', '<', cutoff)
            .where(({ not, exists, selectFrom }) =>
              not(
                exists(
                  selectFrom('webhook_deliveries')
                    .select('webhook_deliveries.id')
                    .whereRef('webhook_deliveries.event_id', '=', 'events.id'),
                ),
              ),
            )
            .orderBy('created_at')
            .limit(limit),
        )
        .executeTakeFirst();
      return { deliveries: Number(deliveries.numDeletedRows), events: Number(events.numDeletedRows) };
    },
    async updateDelivery(id, patch) {
      await db
        .updateTable('webhook_deliveries')
        .set({
          status: patch.status,
          attempts: patch.attempts,
          response_status: patch.responseStatus,
          last_error: patch.lastError,
          updated_at: patch.updatedAt,
        })
        .where('id', '=', id)
        .execute();
    },
    listDeliveries(webhookId, page) {
      // Newest first: the log is read for what just happened.
      return listPage(
        db.selectFrom('webhook_deliveries').where('webhook_id', '=', webhookId),
        page,
        toDelivery,
        'desc',
      );
    },
  };
}
