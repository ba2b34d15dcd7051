import { Type } from '@sinclair/typebox';
import type { Api, ApiContext } from '../../context.js';
import { bearerAuth } from '../../context.js';
import { AppIdParam, DeleteResponse, errorResponses } from '../../schemas/common.js';

export function deleteApp(api: Api, { apps }: ApiContext): void {
  api.delete(
    '/v1/apps/:app_id',
    {
      schema: {
        operationId: 'delete_app_v1_apps__app_id__delete',
        tags: ['Apps'],
        summary: 'Delete an App',
        description: 'Deletes the App and all of its domains; the edge stops serving them at once.',
        security: bearerAuth,
        params: Type.Object({ app_id: AppIdParam }),
        response: { 200: Type.Ref(DeleteResponse, { description: 'Deleted' }), ...errorResponses },
      },
    },
    async (request) => {
      await apps.remove(request.principal.orgId, request.params.app_id);
      return { success: true, message: `App ${request.params.app_id} deleted` };
    },
  );
}
