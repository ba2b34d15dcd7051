import { Type } from '@sinclair/typebox';
import type { Api, ApiContext } from '../../context.js';
import { bearerAuth } from '../../context.js';
import { AppIdParam, errorResponses } from '../../schemas/common.js';
import { DomainParam, DomainResponse } from '../../schemas/domains.js';
import { presentDomain } from './present.js';

export function getDomain(api: Api, context: ApiContext): void {
  const { domains } = context;
  api.get(
    '/v1/apps/:app_id/domains/:domain',
    {
      schema: {
        operationId: 'get_domain_v1_apps__app_id__domains__domain__get',
        tags: ['Apps'],
        summary: 'Get a custom domain',
        description: 'The domain with its status, the DNS records to create and what the last check saw.',
        security: bearerAuth,
        params: Type.Object({ app_id: AppIdParam, domain: DomainParam }),
        response: { 200: Type.Ref(DomainResponse, { description: 'The domain' }), ...errorResponses },
      },
    },
    async (request) => {
      const { app_id, domain } = request.params;
      return presentDomain(context, await domains.get(request.principal.orgId, app_id, domain));
    },
  );
}
