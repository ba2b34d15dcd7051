import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { CertIssuer } from '../acme/issuer.js';
import type { Config } from '../config.js';
import type { AppService } from '../domain/apps.js';
import type { Clock } from '../domain/clock.js';
import type { DomainService } from '../domain/domains.js';
import type { WebhookService } from '../events/webhooks.js';
import type { SnapshotReader, SnapshotState } from '../snapshot/snapshot-reader.js';
import type { Store } from '../store/store.js';

/** The Fastify instance the routes see: TypeBox schemas give `request.body` etc. their types. */
export type Api = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/** What routes may use. Routes hold no logic of their own: they validate, call a service, present. */
export interface ApiContext {
  config: Config;
  store: Store;
  clock: Clock;
  apps: AppService;
  domains: DomainService;
  webhooks: WebhookService;
  /** The certificate issuer, for the local CA's root download; undefined with PORTICO_TLS_ISSUER=none. */
  issuer?: CertIssuer;
  /**
   * The node's edge snapshot (src/snapshot/): `/v1/edge/ask` answers from it when the store
   * cannot, as the edge then serves from it.
   */
  snapshot: Pick<SnapshotReader, 'route'>;
  /** Where this process's edge serves from, for `/readyz`; undefined without an edge in this node's `serve`. */
  edgeState?: () => SnapshotState | undefined;
}

/** Every `/v1` operation is authenticated with a bearer API key. */
export const bearerAuth = [{ HTTPBearer: [] }];
