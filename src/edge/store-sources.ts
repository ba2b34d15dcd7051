import { tlsAlpnChallengeKey } from '../acme/issuer.js';
import type { Store } from '../store/store.js';
import type { ChallengeSource, EdgeRoute, RouteSource } from './sources.js';

/**
 * The edge's sources backed by the store: what every edge node serves is decided by the database
 * alone, and the edge's caches in front of these only make it fast. Certificates come from
 * `acme/certificate-reader.ts`, which knows how they are stored and sealed.
 */
export class StoreRoutes implements RouteSource {
  private readonly suffix: string;

  constructor(
    private readonly store: Store,
    appsDomain: string,
  ) {
    this.suffix = `.${appsDomain}`;
  }

  /**
   * An app's default hostname (`{slug}.{apps domain}`) or an `active` customer domain; nothing
   * else (pending, verifying, verified, failed, moved, removed) has a route.
   */
  async route(hostname: string): Promise<EdgeRoute | undefined> {
    if (hostname.endsWith(this.suffix)) {
      const slug = hostname.slice(0, -this.suffix.length);
      if (slug.includes('.')) return undefined;
      const app = await this.store.findAppBySlug(slug);
      return app && { hostname, appId: app.id, originUrl: app.originUrl };
    }
    const domain = await this.store.findActiveDomain(hostname);
    if (!domain) return undefined;
    const [app, primary] = await Promise.all([
      this.store.findAppById(domain.appId),
      domain.isPrimary ? undefined : this.store.findActivePrimary(domain.appId),
    ]);
    if (!app) return undefined;
    return {
      hostname,
      appId: app.id,
      originUrl: app.originUrl,
      ...(primary ? { redirectTo: primary.name } : {}),
    };
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
