import { Type } from '@sinclair/typebox';
import type { Api, ApiContext } from '../../context.js';
import { bearerAuth } from '../../context.js';
import { toDomainResponse, toListResponse } from '../../presenters.js';
import { AppIdParam, errorResponses, ListQuery } from '../../schemas/common.js';
import { DomainListResponse } from '../../schemas/domains.js';

export function listDomains(api: Api, { domains, config }: ApiContext): void {
  api.get(
    '/v1/apps/:app_id/domains',
    {
      schema: {
        operationId: 'list_domains_v1_apps__app_id__domains_get',
        tags: ['Apps'],
        summary: "List an App's custom domains",
        security: bearerAuth,
        params: Type.Object({ app_id: AppIdParam }),
        querystring: ListQuery,
        response: {
          200: Type.Ref(DomainListResponse, { description: "The App's domains" }),
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const page = await domains.list(request.principal.orgId, request.params.app_id, request.query);
      const certificates = await domains.certificatesOf(page.rows);
      return toListResponse(page, request.query, (domain) =>
        toDomainResponse(domain, config, certificates.get(domain.id)),
      );
    },
  );
}
