import { Type } from '@sinclair/typebox';
import type { Api, ApiContext } from '../../context.js';
import { bearerAuth } from '../../context.js';
import { toDeliveryResponse, toListResponse } from '../../presenters.js';
import { errorResponses, ListQuery } from '../../schemas/common.js';
import { DeliveryListResponse, WebhookIdParam } from '../../schemas/webhooks.js';

/** A webhook's delivery log, newest first: what was sent, how the receiver answered. */
export function listDeliveries(api: Api, { webhooks }: ApiContext): void {
  api.get(
    '/v1/webhooks/:webhook_id/deliveries',
    {
      schema: {
        tags: ['Webhooks'],
        security: bearerAuth,
        operationId: 'list_webhook_deliveries_v1_webhooks__webhook_id__deliveries_get',
        summary: "A webhook's delivery log, newest first",
        params: Type.Object({ webhook_id: WebhookIdParam }),
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
