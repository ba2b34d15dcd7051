import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  LogController,
} from 'fastify';
import { requireApiKey } from './api/auth.js';
import type { Api, ApiContext } from './api/context.js';
import {
  badRequest,
  installErrorHandler,
  rejectNulCharacters,
  toErrorResponse,
} from './api/error-handler.js';
import { idempotencyHooks } from './api/idempotency.js';
import { completeOpenApiDocument } from './api/openapi.js';
import { RateLimiter } from './api/rate-limit.js';
import { createApp } from './api/routes/apps/create-app.js';
import { deleteApp } from './api/routes/apps/delete-app.js';
import { getApp } from './api/routes/apps/get-app.js';
import { listApps } from './api/routes/apps/list-apps.js';
import { updateApp } from './api/routes/apps/update-app.js';
import { addDomain } from './api/routes/domains/add-domain.js';
import { getDomain } from './api/routes/domains/get-domain.js';
import { listDomains } from './api/routes/domains/list-domains.js';
import { removeDomain } from './api/routes/domains/remove-domain.js';
import { updateDomain } from './api/routes/domains/update-domain.js';
import { verifyDomain } from './api/routes/domains/verify-domain.js';
import { dashboard } from './api/routes/system/dashboard.js';
import { edgeAsk } from './api/routes/system/edge-ask.js';
import { health } from './api/routes/system/health.js';
import { metricsRoute } from './api/routes/system/metrics.js';
import { tlsRoot } from './api/routes/system/tls-root.js';
import { createWebhook } from './api/routes/webhooks/create-webhook.js';
import { deleteWebhook } from './api/routes/webhooks/delete-webhook.js';
import { getWebhook } from './api/routes/webhooks/get-webhook.js';
import { listDeliveries } from './api/routes/webhooks/list-deliveries.js';
import { listWebhooks } from './api/routes/webhooks/list-webhooks.js';
import { appSchemas } from './api/schemas/apps.js';
import { commonSchemas } from './api/schemas/common.js';
import { domainSchemas } from './api/schemas/domains.js';
import { webhookSchemas } from './api/schemas/webhooks.js';
import { createValidatorCompiler } from './api/validation.js';
import type { Config } from './config.js';
import type { Clock } from './domain/clock.js';
import type { Services } from './services.js';
import { snapshotFile } from './snapshot/snapshot-file.js';
import { SnapshotReader, type SnapshotState } from './snapshot/snapshot-reader.js';
import type { Store } from './store/store.js';

export interface ApiDeps {
  config: Config;
  store: Store;
  clock: Clock;
  /** A pino logger; tests pass none and get silence. */
  logger?: FastifyBaseLogger;
  /** What the routes call, built by src/services.ts (`createServices`), as `serve` and tests build them. */
  services: Services;
  /** Where the edge of this `serve` serves from (its snapshot during a store outage), for `/readyz`. */
  edgeState?: () => SnapshotState | undefined;
}

/** Request bodies are small JSON documents; anything larger is refused (413) before it is parsed. */
const BODY_LIMIT_BYTES = 64 * 1024;

/**
 * Builds the API without listening, so tests drive it with `inject()` and `roles.ts` decides where
 * it listens.
 */
export async function buildApi({
  config,
  store,
  clock,
  logger,
  services,
  edgeState,
}: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger,
    // Fastify's two lines per request are replaced by the one onResponse line below.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT_BYTES,
    // Behind a load balancer the client address comes from X-Forwarded-For.
    trustProxy: true,
    requestIdHeader: 'x-request-id',
    return503OnClosing: true,
    // A domain in a path may be a 253-character name, longer when percent-encoded.
    routerOptions: { maxParamLength: 1024 },
    // Fastify's own request errors (a bad URL encoding, a too-long parameter) answer in our shape.
    frameworkErrors: (error, _request, reply) => {
      const status = error.statusCode && error.statusCode < 500 ? error.statusCode : 400;
      // Typed loosely by Fastify for any route; the shape is ErrorResponse.
      (reply as unknown as FastifyReply)
        .code(status)
        .send(toErrorResponse(badRequest(status, error.message)));
    },
    // HTTP that does not parse never reaches a route: answer it in the same shape, then close.
    clientErrorHandler: (error, socket) => {
      if (!socket.writable) return socket.destroy();
      const status = (error as { code?: string }).code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      const body = JSON.stringify(
        toErrorResponse(
          badRequest(status, status === 431 ? 'Request headers too large.' : 'Malformed HTTP request.'),
        ),
      );
      socket.end(
        `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    },
  }).withTypeProvider<TypeBoxTypeProvider>() as Api;

  const schemas = [...commonSchemas, ...appSchemas, ...domainSchemas, ...webhookSchemas];
  for (const schema of schemas) app.addSchema(schema);
  app.setValidatorCompiler(createValidatorCompiler(schemas));
  installErrorHandler(app);
  app.addHook('preValidation', rejectNulCharacters);
  // The API speaks JSON only; other bodies are refused with 415 rather than parsed as text.
  app.removeContentTypeParser('text/plain');
  // Clients often label a body-less POST (verify) as JSON: an empty body is no body, not an error.
  // Anything else goes to Fastify's own parser, which refuses __proto__ and constructor keys.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text === '') done(null, undefined);
    else parseJson(request, text, done);
  });

  // One line per request, at the end, with what an operator needs and nothing secret.
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        url: request.routeOptions.url ?? request.url,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request',
    );
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Portico API',
        description: "Custom domains for Apps, compatible with Mixpeek's Apps domains API.",
        version: '1',
      },
      // Relative: the API is wherever this document was fetched from (behind any proxy or port).
      servers: [{ url: '/', description: 'This Portico API' }],
      components: { securitySchemes: { HTTPBearer: { type: 'http', scheme: 'bearer' } } },
    },
    // Component names are the schemas' $ids (AddDomainRequest, DomainResponse, …), as in Mixpeek's spec.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
    transformObject: (documentObject) =>
      completeOpenApiDocument(
        (documentObject as { openapiObject: Record<string, unknown> }).openapiObject,
        schemas,
      ),
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  const context: ApiContext = {
    config,
    store,
    clock,
    apps: services.apps,
    domains: services.domains,
    webhooks: services.webhooks,
    issuer: services.issuer,
    snapshot: new SnapshotReader({
      file: snapshotFile(config.dataDir),
      box: services.box,
      maxAgeMs: config.edgeSnapshotMaxAgeSeconds * 1000,
      logger: app.log,
    }),
    edgeState,
  };

  health(app, context);
  tlsRoot(app, context);
  edgeAsk(app, context);
  if (services.metrics) metricsRoute(app, services.metrics);
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  dashboard(app, context);

  await app.register(async (v1) => {
    v1.addHook('onRequest', requireApiKey(store, new RateLimiter(config.rateLimitPerMinute)));
    const idempotency = idempotencyHooks(store, clock, services.box);
    v1.addHook('preHandler', idempotency.preHandler);
    v1.addHook('onSend', idempotency.onSend);
    for (const route of [createApp, listApps, getApp, updateApp, deleteApp]) route(v1 as Api, context);
    for (const route of [addDomain, listDomains, getDomain, updateDomain, removeDomain, verifyDomain]) {
      route(v1 as Api, context);
    }
    for (const route of [createWebhook, listWebhooks, getWebhook, deleteWebhook, listDeliveries]) {
      route(v1 as Api, context);
    }
  });

  return app;
}
