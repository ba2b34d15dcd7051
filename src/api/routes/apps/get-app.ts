import { Type } from '@sinclair/typebox';
import type { Api, ApiContext } from '../../context.js';
import { bearerAuth } from '../../context.js';
import { toAppResponse } from '../../presenters.js';
import { AppResponse } from '../../schemas/apps.js';
import { AppIdParam, errorResponses } from '../../schemas/common.js';

export function getApp(api: Api, { apps, config }: ApiContext): void {
  api.get(
    '/v1/apps/:app_id',
    {
      schema: {
        operationId: 'get_app_v1_apps__app_id__get',
        tags: ['Apps'],
        summary: 'Get an App',
        security: bearerAuth,
        params: Type.Object({ app_id: AppIdParam }),
        response: { 200: Type.Ref(AppResponse, { description: 'The App' }), ...errorResponses },
      },
    },
    async (request) =>
      toAppResponse(await apps.get(request.principal.orgId, request.params.app_id), config.appsDomain),
  );
}
