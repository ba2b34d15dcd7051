import { Type } from '@sinclair/typebox';
import type { Api, ApiContext } from '../../context.js';
import { bearerAuth } from '../../context.js';
import { toDomainResponse } from '../../presenters.js';
import { AppIdParam, conflictResponse, errorResponses } from '../../schemas/common.js';
import { AddDomainRequest, DomainResponse } from '../../schemas/domains.js';

/** Mixpeek's published endpoint (shared/spec/add-domain.openapi.md): names and texts are binding. */
export function addDomain(api: Api, context: ApiContext): void {
  const { domains } = context;
  api.post(
    '/v1/apps/:app_id/domains',
    {
      schema: {
        operationId: 'add_domain_v1_apps__app_id__domains_post',
        tags: ['Apps'],
        summary: 'Add a custom domain',
        description:
          'Attach a custom domain to an App.\n\nReturns a `verification_token` and `cname_target`. To prove ownership,\nadd a DNS TXT record:\n\n    _mixpeek-verify.{domain}  TXT  "mixpeek-site-verification={verification_token}"\n\nThen call `POST /{app_id}/domains/{domain}/verify` to start polling.',
        security: bearerAuth,
        params: Type.Object({ app_id: AppIdParam }),
        body: Type.Ref(AddDomainRequest),
        response: {
          200: Type.Ref(DomainResponse, { description: 'The newly added domain configuration' }),
          ...errorResponses,
          ...conflictResponse,
        },
      },
    },
    async (request) => {
      const domain = await domains.add(request.principal.orgId, request.params.app_id, {
        domain: request.body.domain,
        isPrimary: request.body.is_primary ?? false,
      });
      // A domain added this instant has no certificate yet: nothing to look up.
      return toDomainResponse(domain, context.config, undefined);
    },
  );
}
