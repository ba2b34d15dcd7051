import { Type } from '@sinclair/typebox';
import type { Api, ApiContext } from '../../context.js';
import { bearerAuth } from '../../context.js';
import { DeleteResponse, errorResponses } from '../../schemas/common.js';
import { WebhookIdParam } from '../../schemas/webhooks.js';

export function deleteWebhook(api: Api, { webhooks }: ApiContext): void {
  api.delete(
    '/v1/webhooks/:webhook_id',
    {
      schema: {
        tags: ['Webhooks'],
        security: bearerAuth,
        operationId: 'delete_webhook_v1_webhooks__webhook_id__delete',
        summary: 'Delete a webhook',
        params: Type.Object({ webhook_id: WebhookIdParam }),
        response: { 200: Type.Ref(DeleteResponse, { description: 'Deleted' }), ...errorResponses },
      },
    },
    async (request) => {
      await webhooks.remove(request.principal.orgId, request.params.webhook_id);
      return { success: true, message: `Webhook ${request.params.webhook_id} deleted` };
    },
  );
}
