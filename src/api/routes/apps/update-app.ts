import { Type } from '@sinclair/typebox';
import type { Api, ApiContext } from '../../context.js';
import { bearerAuth } from '../../context.js';
import { toAppResponse } from '../../presenters.js';
import { AppResponse, UpdateAppRequest } from '../../schemas/apps.js';
import { AppIdParam, conflictResponse, errorResponses } from '../../schemas/common.js';

export function updateApp(api: Api, { apps, config }: ApiContext): void {
  api.patch(
    '/v1/apps/:app_id',
    {
      schema: {
        operationId: 'update_app_v1_apps__app_id__patch',
        tags: ['Apps'],
        summary: 'Update an App',
        description: 'Changes the given fields only. A new slug changes the default hostname at once.',
        security: bearerAuth,
        params: Type.Object({ app_id: AppIdParam }),
        body: Type.Ref(UpdateAppRequest),
        response: {
          200: Type.Ref(AppResponse, { description: 'The updated App' }),
          ...errorResponses,
          ...conflictResponse,
        },
      },
    },
    async (request) => {
      const { slug, meta, origin_url } = request.body;
      const app = await apps.update(request.principal.orgId, request.params.app_id, {
        slug,
        title: meta?.title,
        description: meta ? (meta.description ?? null) : undefined,
        originUrl: origin_url,
      });
      return toAppResponse(app, config.appsDomain);
    },
  );
}
