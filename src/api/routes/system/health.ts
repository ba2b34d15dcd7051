import type { Api, ApiContext } from '../../context.js';

/** Liveness and readiness for load balancers and orchestrators; unauthenticated, not in the OpenAPI document. */
export function health(api: Api, { store }: ApiContext): void {
  api.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));

  api.get('/readyz', { schema: { hide: true } }, async (request, reply) => {
    try {
      await store.ping();
      if (!(await store.migrationsApplied())) {
        return reply.code(503).send({ status: 'unavailable', reason: 'migrations pending' });
      }
      return { status: 'ready' };
    } catch (error) {
      request.log.warn({ err: error }, 'readiness check failed: store unreachable');
      return reply.code(503).send({ status: 'unavailable', reason: 'store unreachable' });
    }
  });
}
