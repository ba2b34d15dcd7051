import { Type } from '@sinclair/typebox';
import type { Api, ApiContext } from '../../context.js';
import { bearerAuth } from '../../context.js';
import { toAppResponse } from '../../presenters.js';
import { AppResponse, CreateAppRequest } from '../../schemas/apps.js';
import { conflictResponse, errorResponses } from '../../schemas/common.js';

export function createApp(api: Api, { apps, config }: ApiContext): void {
  api.post(
    '/v1/apps',
    {
      schema: {
        operationId: 'create_app_v1_apps_post',
        tags: ['Apps'],
        summary: 'Create an App',
        description:
          'Creates an App. It answers at once on its default hostname, `{slug}.{apps domain}`. The platform’s ' +
          'own names are refused (400 `slug_reserved`), as are slugs that are not DNS labels (400 `slug_invalid`); ' +
          'a slug another organization freed recently is held (409 `slug_held`); past the apps quota, 403 ' +
          '`app_quota_exceeded`.',
        security: bearerAuth,
        body: Type.Ref(CreateAppRequest),
        response: {
          200: Type.Ref(AppResponse, { description: 'The new App' }),
          ...errorResponses,
          ...conflictResponse,
        },
      },
    },
    async (request) => {
      const { slug, meta, origin_url } = request.body;
      const app = await apps.create(request.principal.orgId, {
        slug,
        title: meta.title,
        description: meta.description,
        originUrl: origin_url,
      });
      return toAppResponse(app, config.appsDomain);
    },
  );
}
