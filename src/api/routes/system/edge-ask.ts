import { Type } from '@sinclair/typebox';
import { errors } from '../../../domain/errors.js';
import { normalizeHostname } from '../../../domain/hostname.js';
import { routeOf } from '../../../domain/serving.js';
import type { Api, ApiContext } from '../../context.js';
import { ErrorResponse } from '../../schemas/common.js';

/**
 * For platforms that run their own proxy: Caddy's `on_demand_tls { ask … }` contract. 200 when
 * Portico would serve the name (an active domain or an app's default hostname), 404 otherwise, so
 * the proxy gets certificates for exactly those names. The edge's own rule (`routeOf`), read from
 * the store without the edge's caches: one indexed lookup, no DNS; from the node's snapshot while
 * the store cannot answer. No API key: Caddy sends none,
 * and the answer reveals only what DNS and TLS already show.
 */
export function edgeAsk(api: Api, { store, config, snapshot }: ApiContext): void {
  /**
   * The store's answer, or the snapshot's when the store cannot answer: the edge serves from the
   * snapshot then, and a proxy asking here must get the same answer. With neither, the store's error.
   */
  const servedRoute = async (domain: string) => {
    try {
      return await routeOf(store, config.appsDomain, domain);
    } catch (error) {
      try {
        return snapshot.route(domain);
      } catch {
        throw error;
      }
    }
  };
  api.get(
    '/v1/edge/ask',
    {
      schema: {
        operationId: 'edge_ask_v1_edge_ask_get',
        tags: ['Edge'],
        summary: 'Is this hostname served? (Caddy on-demand TLS "ask")',
        // Needs no API key: said here so generated clients and /docs send none.
        security: [],
        querystring: Type.Object({ domain: Type.String({ minLength: 1, maxLength: 253 }) }),
        response: {
          200: Type.Object({ domain: Type.String(), served: Type.Boolean() }, { description: 'Served' }),
          404: Type.Ref(ErrorResponse, { description: 'Not served' }),
        },
      },
    },
    async (request) => {
      const domain = normalizeHostname(request.query.domain);
      if (!(await servedRoute(domain))) throw errors.hostnameNotServed(domain);
      return { domain, served: true };
    },
  );
}
