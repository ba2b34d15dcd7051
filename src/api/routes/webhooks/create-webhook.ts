import { Type } from '@sinclair/typebox';
import type { Api, ApiContext } from '../../context.js';
import { bearerAuth } from '../../context.js';
import { toWebhookResponse } from '../../presenters.js';
import { errorResponses } from '../../schemas/common.js';
import { CreateWebhookRequest, WebhookResponse } from '../../schemas/webhooks.js';

/** Registers a receiver of the organization's events (docs/webhooks.md); its secret is shown only here. */
export function createWebhook(api: Api, { webhooks }: ApiContext): void {
  api.post(
    '/v1/webhooks',
    {
      schema: {
        tags: ['Webhooks'],
        security: bearerAuth,
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
}
