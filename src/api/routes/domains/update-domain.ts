import { Type } from '@sinclair/typebox';
import type { Api, ApiContext } from '../../context.js';
import { bearerAuth } from '../../context.js';
import { AppIdParam, conflictResponse, errorResponses } from '../../schemas/common.js';
import { DomainParam, DomainResponse, UpdateDomainRequest } from '../../schemas/domains.js';
import { presentDomain } from './present.js';

export function updateDomain(api: Api, context: ApiContext): void {
  const { domains } = context;
  api.patch(
    '/v1/apps/:app_id/domains/:domain',
    {
      schema: {
        operationId: 'update_domain_v1_apps__app_id__domains__domain__patch',
        tags: ['Apps'],
        summary: 'Update a custom domain',
        description:
          'Sets or unsets the primary domain. An App has at most one: setting one unsets the other.',
        security: bearerAuth,
        params: Type.Object({ app_id: AppIdParam, domain: DomainParam }),
        body: Type.Ref(UpdateDomainRequest),
        response: {
          200: Type.Ref(DomainResponse, { description: 'The updated domain' }),
          ...errorResponses,
          ...conflictResponse,
        },
      },
    },
    async (request) => {
      const { app_id, domain } = request.params;
      const updated = await domains.setPrimary(
        request.principal.orgId,
        app_id,
        domain,
        request.body.is_primary,
      );
      return presentDomain(context, updated);
    },
  );
}
