import type { App, Domain, DomainStatus, Store } from '../store/store.js';
import type { LifecycleHooks } from './hooks.js';
import { coveringWildcard, isWildcard } from './hostname.js';
import { type DomainEvent, LIVE_STATUSES, SERVED_STATUSES } from './lifecycle.js';

/**
 * What a hostname serves, in one place: the name every app answers on (`{slug}.{apps domain}`),
 * the route of any name, the address of a served name, and which names and certificates a change
 * of an app or a domain touches. The edge (behind its caches), the API (`default_hostname`, a
 * domain's `url`, `/v1/edge/ask`), the certificate reader and the services all ask here, so they
 * never disagree on what is served.
 */

/** An app's default hostname: it answers there from the moment it is created. */
export function defaultHostname(slug: string, appsDomain: string): string {
  return `${slug}.${appsDomain}`;
}

/** `*.{apps domain}`: one certificate for every app's default hostname, where the issuer can make it. */
export function appsWildcardHostname(appsDomain: string): string {
  return `*.${appsDomain}`;
}

/** What of `name` lies below the apps domain (`a.b` of `a.b.apps.example.net`); undefined when it is not below it. */
function belowAppsDomain(name: string, appsDomain: string): string | undefined {
  const suffix = `.${appsDomain}`;
  return name.endsWith(suffix) ? name.slice(0, -suffix.length) : undefined;
}

/**
 * The apps domain itself or any name below it: the platform's. No customer may claim one
 * (hostname.ts), so its route is an app's default hostname or none, and no app may set a cookie
 * for it (edge/set-cookie.ts).
 */
export function isPlatformName(name: string, appsDomain: string): boolean {
  return name === appsDomain || belowAppsDomain(name, appsDomain) !== undefined;
}

/**
 * The slug a default hostname names: one label directly under the apps domain. Undefined for any
 * other name: deeper ones (`a.b.{apps domain}`), the wildcard, names elsewhere.
 */
export function slugOfHostname(hostname: string, appsDomain: string): string | undefined {
  const label = belowAppsDomain(hostname, appsDomain);
  return label && !label.includes('.') && label !== '*' ? label : undefined;
}

/**
 * The label directly under the apps domain of a name at any depth below it (`cname` of
 * `edge.cname.apps.example.net`): the slug whose app would own that name's parent. Undefined when
 * the name is not below the apps domain.
 */
export function appsLabelOf(name: string, appsDomain: string): string | undefined {
  return belowAppsDomain(name, appsDomain)?.split('.').at(-1) || undefined;
}

/**
 * The https address of `target` (a path and query) on `hostname`, for clients of an edge whose
 * HTTPS port is `port`: omitted when 443. The edge's redirects and the API's `url` of a domain are
 * both spelled here, so the two never differ.
 */
export function httpsUrl(hostname: string, port: number, target: string): string {
  return port === 443 ? `https://${hostname}${target}` : `https://${hostname}:${port}${target}`;
}

/** What a hostname serves. Only `active` customer domains and apps' default hostnames have a route. */
export interface Route {
  /** The normalized hostname this route answers for. */
  hostname: string;
  appId: string;
  /** The App's `origin_url` (http or https); `null` while the App has none: the edge answers 502. */
  originUrl: string | null;
  /**
   * The wildcard claim this name is served by (`*.acme.com` for `x.acme.com`), when it is served by
   * one rather than by a claim of its own: its certificate is the wildcard's.
   */
  wildcard?: string;
  /**
   * Set when this is a non-primary domain of an app whose primary domain is active: the edge answers
   * 308 to `https://{redirectTo}{path}{query}` instead of proxying. A normalized hostname.
   */
  redirectTo?: string;
}

/**
 * The route of a normalized hostname, read from the store: an app's default hostname, or an
 * `active` customer domain (redirected to its app's active primary, when it is not that one);
 * nothing else (pending, verifying, verified, failed, moved, removed) has one. Nothing below the
 * apps domain is looked up as a customer's domain: no customer may claim such a name (hostname.ts).
 *
 * A name with no served claim of its own is served by the served wildcard one label above it
 * (`x.acme.com` by `*.acme.com`; never `a.b.acme.com`, nor `acme.com` itself): an exact claim
 * always wins over a wildcard on its own name, whichever organizations hold the two
 * (docs/security.md, "Wildcard claims"). Two lookups at most, each by the indexed name.
 */
export async function routeOf(
  store: Store,
  appsDomain: string,
  hostname: string,
): Promise<Route | undefined> {
  if (belowAppsDomain(hostname, appsDomain) !== undefined) {
    const slug = slugOfHostname(hostname, appsDomain);
    const app = slug === undefined ? undefined : await store.findAppBySlug(slug);
    return app && { hostname, appId: app.id, originUrl: app.originUrl };
  }
  const domain = await servingClaim(store, hostname, SERVED_STATUSES);
  if (!domain) return undefined;
  const route = await claimRoute(store, domain);
  return route && domain.name !== hostname ? routeUnderWildcard(route, hostname) : route;
}

/**
 * The route of a served wildcard claim itself, under its own name (`*.acme.com`): what every name
 * one label under it without a served claim of its own is served (`routeUnderWildcard`). Not a
 * name's route (`routeOf` answers none for `*.acme.com`): the edge's snapshot keeps a wildcard this
 * way, once for all the names under it. Undefined when `wildcard` is no served wildcard claim.
 */
export async function wildcardRouteOf(
  store: Store,
  appsDomain: string,
  wildcard: string,
): Promise<Route | undefined> {
  if (!isWildcard(wildcard) || belowAppsDomain(wildcard, appsDomain) !== undefined) return undefined;
  const domain = await store.findDomainInStatus(wildcard, SERVED_STATUSES);
  return domain && claimRoute(store, domain);
}

/**
 * The route of `hostname`, one label under the wildcard claim whose own route is `wildcardRoute`
 * (`wildcardRouteOf`): the wildcard's App and redirect, and its certificate (`wildcard`).
 */
export function routeUnderWildcard(wildcardRoute: Route, hostname: string): Route {
  return { ...wildcardRoute, hostname, wildcard: wildcardRoute.hostname };
}

/** The route a served claim gives its own name: its App, redirected to the App's served primary unless it is that one. */
async function claimRoute(store: Store, domain: Domain): Promise<Route | undefined> {
  const [app, primary] = await Promise.all([
    store.findAppById(domain.appId),
    domain.isPrimary ? undefined : store.findPrimaryInStatus(domain.appId, SERVED_STATUSES),
  ]);
  if (!app) return undefined;
  return {
    hostname: domain.name,
    appId: app.id,
    originUrl: app.originUrl,
    // A wildcard primary names no one host to send visitors to: the app's other names stay put.
    ...(primary && !isWildcard(primary.name) ? { redirectTo: primary.name } : {}),
  };
}

/** Rows read per query by `servedRoutes`. */
const PAGE = 1_000;

/**
 * Every route there is, as `routeOf` would answer each name, read a page at a time rather than a
 * name at a time: the edge's snapshot (src/snapshot/) is built from it. The same rules as
 * `routeOf`: each app's default hostname, and each served customer domain (never one below the
 * apps domain) of an app that exists, redirected to its app's served primary (never a wildcard)
 * unless it is that one. A served wildcard claim comes as its own route (`wildcardRouteOf`), which
 * the names under it are served (`routeUnderWildcard`) where they have no route of their own.
 * Not one consistent read: a change made while it reads is announced (`publishServingChange`),
 * and the caller applies those after it.
 */
export async function servedRoutes(store: Store, appsDomain: string): Promise<Route[]> {
  const apps = new Map<string, App>();
  for (let after = ''; ; ) {
    const page = await store.listAllApps(after, PAGE);
    for (const app of page) apps.set(app.id, app);
    if (page.length < PAGE) break;
    after = page.at(-1)?.id ?? '';
  }
  const domains: Pick<Domain, 'name' | 'appId' | 'isPrimary'>[] = [];
  for (let after = ''; ; ) {
    const page = await store.listDomainsInStatus(SERVED_STATUSES, after, PAGE);
    domains.push(...page);
    if (page.length < PAGE) break;
    after = page.at(-1)?.name ?? '';
  }
  const primaries = new Map<string, string>();
  for (const domain of domains) {
    // As in `routeOf`: a wildcard primary is no host to redirect to.
    if (domain.isPrimary && !isWildcard(domain.name)) primaries.set(domain.appId, domain.name);
  }
  const routes: Route[] = [];
  for (const app of apps.values()) {
    routes.push({ hostname: defaultHostname(app.slug, appsDomain), appId: app.id, originUrl: app.originUrl });
  }
  for (const domain of domains) {
    const app = apps.get(domain.appId);
    if (!app || belowAppsDomain(domain.name, appsDomain) !== undefined) continue;
    const primary = domain.isPrimary ? undefined : primaries.get(domain.appId);
    routes.push({
      hostname: domain.name,
      appId: app.id,
      originUrl: app.originUrl,
      ...(primary ? { redirectTo: primary } : {}),
    });
  }
  return routes;
}

/**
 * The claim in one of `statuses` that serves `hostname`: its own, else the wildcard one label above
 * it. The exact lookup comes first and wins; both are lookups by the indexed name.
 */
export async function servingClaim(
  store: Pick<Store, 'findDomainInStatus'>,
  hostname: string,
  statuses: readonly DomainStatus[],
): Promise<Domain | undefined> {
  // `*.acme.com` itself is no name a visitor asks for (nor a TLS client should get a handshake for).
  if (isWildcard(hostname)) return undefined;
  const own = await store.findDomainInStatus(hostname, statuses);
  if (own) return own;
  const wildcard = coveringWildcard(hostname);
  return wildcard === undefined ? undefined : store.findDomainInStatus(wildcard, statuses);
}

/**
 * Why a domain's certificates are dropped, in the words of RFC 5280's revocation reasons (the CA is
 * told, for the certificates it revokes): `superseded` when another organization took the name over
 * and is served it with a certificate of its own, `cessationOfOperation` when the name is no longer
 * served here at all (removed, or its ownership record gone).
 */
export type DropReason = 'cessationOfOperation' | 'superseded';

/**
 * What the change rules ask of the issuing side (`CertificateService`); none with PORTICO_TLS_ISSUER=none.
 * Dropping takes a certificate off the edge at once (with the transaction); its revocation at the
 * CA, which needs the network, is queued in the same transaction and done by a worker.
 */
export interface ServedCertificates {
  /** Makes sure an app's default hostname will have a certificate. */
  requestForApp(tx: Store, app: App, hostname: string, now: Date): Promise<void>;
  dropHostname(tx: Store, hostname: string): Promise<void>;
  dropForApp(tx: Store, appId: string): Promise<void>;
  dropForDomain(tx: Store, domainId: string, reason: DropReason): Promise<void>;
}

/** The app and domain services' hooks, and what a domain's status change does to what is served. */
export interface ServingChanges extends Required<LifecycleHooks> {
  /** After a check or a hand-over changed a domain's status. */
  domainEvent(tx: Store, domain: Domain, event: DomainEvent): Promise<void>;
}

/**
 * Which names a change re-announces (`publishServingChange`: every edge forgets what it cached for
 * them once the change commits) and which certificates it requests or drops. Each runs inside the
 * transaction of the change.
 */
export function servingChanges(appsDomain: string, certificates?: ServedCertificates): ServingChanges {
  const hostnameOf = (app: App) => defaultHostname(app.slug, appsDomain);
  /** Every hostname an app answers on: its default hostname and its domains. */
  const announceApp = async (tx: Store, app: App) => {
    for (const name of [hostnameOf(app), ...(await tx.listDomainNames(app.id))]) {
      await tx.publishServingChange(name);
    }
  };
  /** A domain no longer served: removed, or moved (another organization proved it, or its records went). */
  const unserveDomain = async (tx: Store, domain: Domain, reason: DropReason) => {
    await certificates?.dropForDomain(tx, domain.id, reason);
    await tx.publishServingChange(domain.name);
  };
  return {
    appCreated: async (tx, app, now) => certificates?.requestForApp(tx, app, hostnameOf(app), now),
    appRenamed: async (tx, before, after, now) => {
      await certificates?.dropHostname(tx, hostnameOf(before));
      await certificates?.requestForApp(tx, after, hostnameOf(after), now);
      await tx.publishServingChange(hostnameOf(before));
    },
    appRoutingChanged: (tx, app) => announceApp(tx, app),
    appRemoved: async (tx, app) => {
      await certificates?.dropForApp(tx, app.id);
      await announceApp(tx, app);
    },
    domainRemoved: (tx, domain) => unserveDomain(tx, domain, 'cessationOfOperation'),
    domainEvent: async (tx, domain, event) => {
      if (event !== 'domain.moved') return;
      // A hand-over moves the old claim after the new one became live, in the same transaction: a
      // live claim on the name now is the one that superseded this. Without one, the records went.
      const successor = await tx.findDomainInStatus(domain.name, LIVE_STATUSES);
      const handedOver = successor !== undefined && successor.id !== domain.id;
      await unserveDomain(tx, domain, handedOver ? 'superseded' : 'cessationOfOperation');
    },
  };
}
