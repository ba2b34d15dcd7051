import { Type } from '@sinclair/typebox';
import type { Api, ApiContext } from '../../context.js';
import { bearerAuth } from '../../context.js';
import { AppIdParam, DeleteResponse, errorResponses } from '../../schemas/common.js';
import { DomainParam } from '../../schemas/domains.js';

export function removeDomain(api: Api, { domains }: ApiContext): void {
  api.delete(
    '/v1/apps/:app_id/domains/:domain',
    {
      schema: {
        operationId: 'remove_domain_v1_apps__app_id__domains__domain__delete',
        tags: ['Apps'],
        summary: 'Remove a custom domain',
        description: 'Removes the domain from the App; the edge stops serving it and its checks stop.',
        security: bearerAuth,
        params: Type.Object({ app_id: AppIdParam, domain: DomainParam }),
        response: { 200: Type.Ref(DeleteResponse, { description: 'Removed' }), ...errorResponses },
      },
    },
    async (request) => {
      const { app_id, domain } = request.params;
      const removed = await domains.remove(request.principal.orgId, app_id, domain);
      return { success: true, message: `Domain ${removed.name} removed` };
    },
  );
}
