import { Type } from '@sinclair/typebox';
import type { Api, ApiContext } from '../../context.js';
import { bearerAuth } from '../../context.js';
import { toListResponse, toWebhookResponse } from '../../presenters.js';
import { errorResponses, ListQuery } from '../../schemas/common.js';
import { WebhookListResponse } from '../../schemas/webhooks.js';

export function listWebhooks(api: Api, { webhooks }: ApiContext): void {
  api.get(
    '/v1/webhooks',
    {
      schema: {
        tags: ['Webhooks'],
        security: bearerAuth,
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
}
