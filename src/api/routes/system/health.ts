import type { Api, ApiContext } from '../../context.js';

/**
 * Liveness and readiness for load balancers and orchestrators; unauthenticated, not in the OpenAPI
 * document. With an edge in the same `serve`, `/readyz` also says where it serves from: `edge:
 * {serving_from: "store"}`, or `"snapshot"` with `since` (when it began to, the store having failed)
 * and `snapshot_taken_at` (when the store last agreed with it) during a store outage
 * (docs/operations.md, "When the store is down").
 */
export function health(api: Api, { store, edgeState }: ApiContext): void {
  api.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));

  const edge = () => {
    const state = edgeState?.();
    if (!state) return {};
    if (!state.servingSince) return { edge: { serving_from: 'store' } };
    return {
      edge: {
        serving_from: 'snapshot',
        since: state.servingSince.toISOString(),
        snapshot_taken_at: state.takenAt?.toISOString() ?? null,
      },
    };
  };

  api.get('/readyz', { schema: { hide: true } }, async (request, reply) => {
    try {
      await store.ping();
      if (!(await store.migrationsApplied())) {
        return reply.code(503).send({ status: 'unavailable', reason: 'migrations pending', ...edge() });
      }
      return { status: 'ready', ...edge() };
    } catch (error) {
      request.log.warn({ err: error }, 'readiness check failed: store unreachable');
      return reply.code(503).send({ status: 'unavailable', reason: 'store unreachable', ...edge() });
    }
  });
}
