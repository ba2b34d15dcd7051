import { Type } from '@sinclair/typebox';
import type { Api, ApiContext } from '../../context.js';
import { bearerAuth } from '../../context.js';
import { toAppResponse, toListResponse } from '../../presenters.js';
import { AppListResponse } from '../../schemas/apps.js';
import { errorResponses, ListQuery } from '../../schemas/common.js';

export function listApps(api: Api, { apps, config }: ApiContext): void {
  api.get(
    '/v1/apps',
    {
      schema: {
        operationId: 'list_apps_v1_apps_get',
        tags: ['Apps'],
        summary: 'List Apps',
        security: bearerAuth,
        querystring: ListQuery,
        response: {
          200: Type.Ref(AppListResponse, { description: "The organization's Apps" }),
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const page = await apps.list(request.principal.orgId, request.query);
      return toListResponse(page, request.query, (app) => toAppResponse(app, config.appsDomain));
    },
  );
}
