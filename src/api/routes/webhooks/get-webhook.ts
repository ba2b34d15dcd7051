import { Type } from '@sinclair/typebox';
import type { Api, ApiContext } from '../../context.js';
import { bearerAuth } from '../../context.js';
import { toWebhookResponse } from '../../presenters.js';
import { errorResponses } from '../../schemas/common.js';
import { WebhookIdParam, WebhookResponse } from '../../schemas/webhooks.js';

export function getWebhook(api: Api, { webhooks }: ApiContext): void {
  api.get(
    '/v1/webhooks/:webhook_id',
    {
      schema: {
        tags: ['Webhooks'],
        security: bearerAuth,
        operationId: 'get_webhook_v1_webhooks__webhook_id__get',
        summary: 'Get a webhook',
        params: Type.Object({ webhook_id: WebhookIdParam }),
        response: { 200: Type.Ref(WebhookResponse, { description: 'The webhook' }), ...errorResponses },
      },
    },
    async (request) =>
      toWebhookResponse(await webhooks.get(request.principal.orgId, request.params.webhook_id)),
  );
}
