import { tlsAlpnChallengeKey } from '../acme/issuer.js';
import { LIVE_STATUSES } from '../domain/lifecycle.js';
import { routingProof } from '../domain/routing-proof.js';
import { type Route, routeOf, servingClaim } from '../domain/serving.js';
import type { Store } from '../store/store.js';
import type { ChallengeSource, RouteSource, RoutingProofSource } from './sources.js';

/**
 * The edge's sources backed by the store: what every edge node serves is decided by the database
 * alone, and the edge's caches in front of these only make it fast. Certificates come from
 * `acme/certificate-reader.ts`, which knows how they are stored and sealed.
 */
export class StoreRoutes implements RouteSource {
  constructor(
    private readonly store: Store,
    private readonly appsDomain: string,
  ) {}

  /** The route `domain/serving.ts` reads for the name; the edge caches it. */
  route(hostname: string): Promise<Route | undefined> {
    return routeOf(this.store, this.appsDomain, hostname);
  }
}

/** HTTP-01 and TLS-ALPN-01 answers from the store, where the issuing worker put them. */
export class StoreChallenges implements ChallengeSource {
  constructor(private readonly store: Store) {}

  keyAuthorization(token: string): Promise<string | undefined> {
    return this.store.findChallenge(token);
  }

  tlsAlpnKeyAuthorization(hostname: string): Promise<string | undefined> {
    return this.store.findChallenge(tlsAlpnChallengeKey(hostname));
  }
}

/** Routing proofs for the live claim on a name, with the key every node derives alike. */
export class StoreRoutingProofs implements RoutingProofSource {
  constructor(
    private readonly store: Store,
    private readonly key: Buffer,
  ) {}

  /** The claim's own name's proof, or a wildcard's for the name under it that the worker asked. */
  async proof(hostname: string, nonce: string): Promise<string | undefined> {
    const claim = await servingClaim(this.store, hostname, LIVE_STATUSES);
    return claim && routingProof(this.key, claim.id, hostname, nonce);
  }
}
