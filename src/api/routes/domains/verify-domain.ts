import { Type } from '@sinclair/typebox';
import type { Api, ApiContext } from '../../context.js';
import { bearerAuth } from '../../context.js';
import { AppIdParam, errorResponses } from '../../schemas/common.js';
import { DomainParam, DomainResponse } from '../../schemas/domains.js';
import { presentDomain } from './present.js';

export function verifyDomain(api: Api, context: ApiContext): void {
  const { domains } = context;
  api.post(
    '/v1/apps/:app_id/domains/:domain/verify',
    {
      schema: {
        operationId: 'verify_domain_v1_apps__app_id__domains__domain__verify_post',
        tags: ['Apps'],
        summary: 'Verify a custom domain',
        description:
          'Checks DNS now and answers what it found. A `pending`, `failed` or `moved` domain starts over: `verifying`, then polled until its records are found or the deadline passes. A `verified` or `active` domain is re-checked at once: `last_checked_at` and `verification_errors` show the result, and a failure found this way is reported but never counted against the domain (only scheduled re-checks count). A domain checked less than 10 seconds ago is answered as that check left it.',
        security: bearerAuth,
        params: Type.Object({ app_id: AppIdParam, domain: DomainParam }),
        response: { 200: Type.Ref(DomainResponse, { description: 'The domain' }), ...errorResponses },
      },
    },
    async (request) => {
      const { app_id, domain } = request.params;
      return presentDomain(
        context,
        await domains.requestVerification(request.principal.orgId, app_id, domain),
      );
    },
  );
}
