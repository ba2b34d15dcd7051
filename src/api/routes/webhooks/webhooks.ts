import { Type } from '@sinclair/typebox';
import type { WebhookService } from '../../../events/webhooks.js';
import type { Webhook, WebhookDelivery } from '../../../store/store.js';
import type { Api } from '../../context.js';
import { bearerAuth } from '../../context.js';
import { toListResponse } from '../../presenters.js';
import { DeleteResponse, errorResponses, ListQuery } from '../../schemas/common.js';
import {
  CreateWebhookRequest,
  DeliveryListResponse,
  type DeliveryResponse,
  WebhookIdParam,
  WebhookListResponse,
  WebhookResponse,
} from '../../schemas/webhooks.js';

const toWebhookResponse = (webhook: Webhook, secret?: string): WebhookResponse => ({
  webhook_id: webhook.id,
  url: webhook.url,
  events: webhook.events,
  created_at: webhook.createdAt,
  ...(secret ? { secret } : {}),
});

const toDeliveryResponse = (delivery: WebhookDelivery & { eventType?: string }): DeliveryResponse => ({
  delivery_id: delivery.id,
  event_id: delivery.eventId,
  event_type: delivery.eventType ?? null,
  status: delivery.status,
  attempts: delivery.attempts,
  response_status: delivery.responseStatus,
  last_error: delivery.lastError,
  created_at: delivery.createdAt,
  updated_at: delivery.updatedAt,
});

const params = Type.Object({ webhook_id: WebhookIdParam });

/** `/v1/webhooks`: register receivers, list and remove them, read their delivery log (docs/webhooks.md). */
export function webhookRoutes(api: Api, webhooks: WebhookService): void {
  const common = { tags: ['Webhooks'], security: bearerAuth };

  api.post(
    '/v1/webhooks',
    {
      schema: {
        ...common,
        operationId: 'create_webhook_v1_webhooks_post',
        summary: 'Register a webhook',
        body: Type.Ref(CreateWebhookRequest),
        response: {
          200: Type.Ref(WebhookResponse, { description: 'The webhook, with its secret (shown once)' }),
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const { webhook, secret } = await webhooks.create(request.principal.orgId, request.body);
      return toWebhookResponse(webhook, secret);
    },
  );

  api.get(
    '/v1/webhooks',
    {
      schema: {
        ...common,
        operationId: 'list_webhooks_v1_webhooks_get',
        summary: 'List webhooks',
        querystring: ListQuery,
        response: { 200: Type.Ref(WebhookListResponse, { description: 'Webhooks' }), ...errorResponses },
      },
    },
    async (request) =>
      toListResponse(await webhooks.list(request.principal.orgId, request.query), request.query, (webhook) =>
        toWebhookResponse(webhook),
      ),
  );

  api.get(
    '/v1/webhooks/:webhook_id',
    {
      schema: {
        ...common,
        operationId: 'get_webhook_v1_webhooks__webhook_id__get',
        summary: 'Get a webhook',
        params,
        response: { 200: Type.Ref(WebhookResponse, { description: 'The webhook' }), ...errorResponses },
      },
    },
    async (request) =>
      toWebhookResponse(await webhooks.get(request.principal.orgId, request.params.webhook_id)),
  );

  api.delete(
    '/v1/webhooks/:webhook_id',
    {
      schema: {
        ...common,
        operationId: 'delete_webhook_v1_webhooks__webhook_id__delete',
        summary: 'Delete a webhook',
        params,
        response: { 200: Type.Ref(DeleteResponse, { description: 'Deleted' }), ...errorResponses },
      },
    },
    async (request) => {
      await webhooks.remove(request.principal.orgId, request.params.webhook_id);
      return { success: true, message: `Webhook ${request.params.webhook_id} deleted` };
    },
  );

  api.get(
    '/v1/webhooks/:webhook_id/deliveries',
    {
      schema: {
        ...common,
        operationId: 'list_webhook_deliveries_v1_webhooks__webhook_id__deliveries_get',
        summary: "A webhook's delivery log, newest first",
        params,
        querystring: ListQuery,
        response: { 200: Type.Ref(DeliveryListResponse, { description: 'Deliveries' }), ...errorResponses },
      },
    },
    async (request) =>
      toListResponse(
        await webhooks.deliveries(request.principal.orgId, request.params.webhook_id, request.query),
        request.query,
        toDeliveryResponse,
      ),
  );
}
