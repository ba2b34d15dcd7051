/**
 * The store: every piece of state Portico keeps, behind one interface with two implementations
 * (SQLite for one node, PostgreSQL for many) sharing one query layer (kysely).
 *
 * Contract for every method unless it says otherwise:
 * - Safe to call concurrently from many requests, processes and (on PostgreSQL) machines.
 * - `find*` answers `undefined` when nothing matches; nothing here throws for "not found".
 * - Methods are scoped by organization where the caller acts for one: a record of another
 *   organization is indistinguishable from a missing one.
 * - Unique violations surface as `UniqueViolation` with the index name, never as a driver error.
 * - Times are passed in by the caller (an injectable clock), never read from the database server.
 */
export interface Store
  extends OrganizationStore,
    ApiKeyStore,
    AppStore,
    DomainStore,
    JobStore,
    CertificateStore,
    ChallengeRecordStore,
    DnsChallengeStore,
    SettingStore,
    WebhookStore,
    IdempotencyStore {
  readonly dialect: 'sqlite' | 'postgres';
  /**
   * Runs `fn` in one transaction with a store bound to it; commits when `fn` resolves, rolls back
   * when it throws. Nested calls join the outer transaction.
   */
  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T>;
  /**
   * Tells every edge, on every node, that what `hostname` serves changed (a domain removed or moved,
   * a certificate renewed). Inside a transaction it is delivered once the transaction commits, and
   * not at all if it rolls back.
   */
  publishServingChange(hostname: string): Promise<void>;
  /**
   * Calls `listener` with each hostname whose serving changed, announced by any node, or with
   * `ALL_HOSTNAMES` when changes may have been missed (a reconnected LISTEN): forget everything.
   */
  subscribeServingChanges(listener: (hostname: string) => void): () => void;
  /** Cheap round trip for readiness checks. */
  ping(): Promise<void>;
  /** True when every migration this build knows of has been applied. */
  migrationsApplied(): Promise<boolean>;
  close(): Promise<void>;
}

/** What the change feed announces when it may have missed changes: every hostname. */
export const ALL_HOSTNAMES = '*';

export interface Page {
  limit: number;
  offset: number;
}
export interface PageOf<T> {
  rows: T[];
  total: number;
}

export interface Organization {
  id: string;
  name: string;
  createdAt: string;
}

export interface OrganizationStore {
  /** The organization with this name, created if missing (concurrent callers get the same one). */
  ensureOrganization(name: string, id: string, now: string): Promise<Organization>;
}

export type ApiKeyScope = 'read' | 'write';
export interface ApiKey {
  id: string;
  orgId: string;
  name: string;
  scope: ApiKeyScope;
  lookup: string;
  hash: string;
  createdAt: string;
}

/** What an operator may see of a key: never its hash or lookup prefix. */
export type ApiKeySummary = Omit<ApiKey, 'lookup' | 'hash'> & { orgName: string };

export interface ApiKeyStore {
  insertApiKey(key: ApiKey): Promise<void>;
  /** Keys whose lookup prefix matches (normally one); the caller compares the full hash. */
  findApiKeysByLookup(lookup: string): Promise<ApiKey[]>;
  countApiKeys(): Promise<number>;
  /** Every key, or one organization's (by name), oldest first. */
  listApiKeys(orgName?: string): Promise<ApiKeySummary[]>;
  /** Deletes a key (revocation): the row goes, so nothing of it can authenticate again. */
  deleteApiKey(id: string): Promise<ApiKeySummary | undefined>;
}

export interface App {
  id: string;
  orgId: string;
  slug: string;
  title: string;
  description: string | null;
  originUrl: string | null;
  createdAt: string;
  updatedAt: string;
}
export type AppPatch = Partial<Pick<App, 'slug' | 'title' | 'description' | 'originUrl'>> & {
  updatedAt: string;
};

export interface AppStore {
  /** Throws `UniqueViolation('apps_slug_key')` when the slug is taken. */
  insertApp(app: App): Promise<void>;
  findApp(orgId: string, appId: string): Promise<App | undefined>;
  /**
   * Like `findApp`, and inside a transaction also locks the app row until commit (PostgreSQL
   * `FOR UPDATE`; SQLite transactions are already serialized), so changes to one app's domains
   * are applied one at a time.
   */
  findAppForUpdate(orgId: string, appId: string): Promise<App | undefined>;
  findAppBySlug(slug: string): Promise<App | undefined>;
  /** Any organization's app: for the worker and the edge, which act for no organization. */
  findAppById(appId: string): Promise<App | undefined>;
  /**
   * Every organization's apps, `limit` at a time in id order after `afterId` ('' for the first
   * page): the edge's snapshot of what it serves (src/snapshot/) reads them all this way.
   */
  listAllApps(afterId: string, limit: number): Promise<App[]>;
  listApps(orgId: string, page: Page): Promise<PageOf<App>>;
  /** Answers the updated app, or undefined when it does not exist in this organization. */
  updateApp(orgId: string, appId: string, patch: AppPatch): Promise<App | undefined>;
  /** Deletes the app and, by cascade, its domains. Answers whether it existed. */
  deleteApp(orgId: string, appId: string): Promise<boolean>;
  /**
   * Counts `delta` apps more (or fewer) against the organization, in one statement. With `limit`,
   * an increase that would pass it is refused (answers false) and nothing changes, so concurrent
   * creates can never together exceed the quota.
   */
  adjustAppCount(orgId: string, delta: number, limit?: number): Promise<boolean>;
  /** Holds a freed slug for `orgId` until `heldUntil`, replacing an earlier hold of the slug. */
  holdSlug(slug: string, orgId: string, heldUntil: string, now: string): Promise<void>;
  /** The hold on `slug` that lasts past `now`, if any. */
  findSlugHold(slug: string, now: string): Promise<{ orgId: string; heldUntil: string } | undefined>;
  /** Ends the hold on `slug` (its organization took it again, or it expired). */
  releaseSlugHold(slug: string): Promise<void>;
}

export interface VerificationError {
  code: string;
  message: string;
}

/**
 * The statuses a domain's row can hold. What each means, and every rule that moves a domain from
 * one to another, is domain/lifecycle.ts's; the store only keeps them.
 */
export const DOMAIN_STATUSES = ['pending', 'verifying', 'verified', 'active', 'failed', 'moved'] as const;
export type DomainStatus = (typeof DOMAIN_STATUSES)[number];

export interface Domain {
  id: string;
  appId: string;
  orgId: string;
  name: string;
  status: DomainStatus;
  isPrimary: boolean;
  verificationToken: string;
  createdAt: string;
  updatedAt: string;
  verifiedAt: string | null;
  verifyingSince: string | null;
  lastCheckedAt: string | null;
  nextCheckAt: string | null;
  verificationErrors: VerificationError[];
  routingObserved: string[];
  /** How the last check saw traffic reach the platform, or null when it did not (or none ran). */
  routingVia: RoutingVia | null;
  failureStreak: number;
  /**
   * What visitors got from each edge on the last serving probe (probes/serving-probes.ts), or null
   * when none ran. An observation only: it never changes the status.
   */
  serving: ServingReport | null;
}

/** One serving probe of a domain: every configured edge address, asked at `checkedAt`. */
export interface ServingReport {
  checkedAt: string;
  /** Every edge presented the current certificate and answered through to the origin. */
  ok: boolean;
  edges: EdgeServing[];
}

/** What one edge address served for the name. */
export interface EdgeServing {
  /** `host:port` as configured (PORTICO_EDGE_PROBE_ADDRESSES). */
  address: string;
  ok: boolean;
  /** SHA-256 (hex) of the DER of the leaf certificate the edge presented; null when no handshake completed. */
  certificateSha256: string | null;
  /** The HTTP status of the request through the edge; null when none came back. */
  status: number | null;
  /** Why it is not ok, in a sentence; null when ok. */
  error: string | null;
}

/** `dns`: the CNAME or addresses point here; `proxy`: a request through the customer's proxy reached the edge. */
export type RoutingVia = 'dns' | 'proxy';
export type DomainPatch = Partial<
  Pick<
    Domain,
    | 'status'
    | 'isPrimary'
    | 'verifiedAt'
    | 'verifyingSince'
    | 'lastCheckedAt'
    | 'nextCheckAt'
    | 'verificationErrors'
    | 'routingObserved'
    | 'routingVia'
    | 'failureStreak'
  >
> & { updatedAt: string };

export interface DomainStore {
  /**
   * Throws `UniqueViolation('domains_org_name_key')` when the organization already claims the name,
   * and `UniqueViolation('domains_one_live_claim')` for a live claim on a name that has one.
   */
  insertDomain(domain: Domain): Promise<void>;
  findDomain(appId: string, name: string): Promise<Domain | undefined>;
  findDomainById(id: string): Promise<Domain | undefined>;
  /** The organization's claim on `name`, on whichever of its apps. */
  findDomainInOrg(orgId: string, name: string): Promise<Domain | undefined>;
  /** Every organization's claim on `name`. */
  findClaims(name: string): Promise<Domain[]>;
  listDomains(appId: string, page: Page): Promise<PageOf<Domain>>;
  /**
   * Inside a transaction, waits for the lock on `name` and holds it until the transaction ends.
   * Every transaction that may change which claim on a name is live (a proof of ownership handing
   * the name over, a certificate making a claim `active`) takes it before reading the claims, so
   * they run one at a time and each sees what the one before committed (PostgreSQL: an advisory
   * transaction lock; SQLite: nothing to do, its write transactions already run one at a time).
   * Outside a transaction it protects nothing. The database itself refuses a second live claim
   * (`UniqueViolation('domains_one_live_claim')`); the lock is what keeps hand-overs from meeting it.
   */
  lockDomainName(name: string): Promise<void>;
  /**
   * The claim on `name` in one of `statuses`, whichever organization holds it: with the statuses
   * the edge serves (domain/lifecycle.ts), what the edge serves. At most one claim on a name is live.
   */
  findDomainInStatus(name: string, statuses: readonly DomainStatus[]): Promise<Domain | undefined>;
  /** The app's primary domain when its status is one of `statuses`, else undefined. */
  findPrimaryInStatus(appId: string, statuses: readonly DomainStatus[]): Promise<Domain | undefined>;
  /**
   * The claims in one of `statuses` (of every organization), `limit` at a time in name order after
   * `afterName` ('' for the first page), with only what a route needs: the edge's snapshot reads
   * every served name this way (domain/serving.ts `servedRoutes`).
   */
  listDomainsInStatus(
    statuses: readonly DomainStatus[],
    afterName: string,
    limit: number,
  ): Promise<Pick<Domain, 'name' | 'appId' | 'isPrimary'>[]>;
  /**
   * Counts `delta` domains more (or fewer) against the organization, in one statement. With
   * `limit`, an increase that would pass it is refused (answers false) and nothing changes, so
   * concurrent adds can never together exceed the quota.
   */
  adjustDomainCount(orgId: string, delta: number, limit?: number): Promise<boolean>;
  /** How many domains are in each status (metrics). */
  countDomainsByStatus(): Promise<{ status: string; count: number }[]>;
  /** Names of the app's domains (for invalidating what the edge cached for them). */
  listDomainNames(appId: string): Promise<string[]>;
  /**
   * Throws `UniqueViolation('domains_one_live_claim')` when the patch would make the claim live
   * (`verified` or `active`) while another claim on the name is: move the other one first.
   */
  updateDomain(id: string, patch: DomainPatch): Promise<Domain | undefined>;
  /**
   * Stores the last serving probe's report, and nothing else: not `updated_at` either, since a probe
   * observes the domain rather than changes it. Answers the domain as stored, or undefined when it
   * is gone.
   */
  recordServing(id: string, serving: ServingReport | null): Promise<Domain | undefined>;
  /**
   * Up to `limit` domains in one of `statuses` with no job whose key is `jobKeyPrefix` + their id,
   * in id order after `afterId` ('' for the first page): the served domains a recurring job misses.
   */
  listDomainsWithoutJob(
    statuses: readonly DomainStatus[],
    jobKeyPrefix: string,
    afterId: string,
    limit: number,
  ): Promise<Pick<Domain, 'id' | 'orgId'>[]>;
  /** Unsets `is_primary` on the app's domains other than `exceptId`. */
  clearPrimary(appId: string, exceptId: string, now: string): Promise<void>;
  deleteDomain(id: string): Promise<boolean>;
}

/**
 * What becomes of a job after a run: done (undefined; the row is deleted, docs/architecture.md
 * "Jobs and leases"), or run again at `retryAt`, with why.
 */
export type JobOutcome = undefined | { retryAt: Date; error: string };

export interface Job {
  id: string;
  kind: string;
  key: string;
  payload: Record<string, unknown>;
  orgId: string | null;
  runAt: string;
  lockedBy: string | null;
  lockedAt: string | null;
  attempts: number;
  revision: number;
  lastError: string | null;
  createdAt: string;
}

export interface NewJob {
  kind: string;
  /** At most one job exists per key: enqueueing an existing key reschedules it. */
  key: string;
  payload: Record<string, unknown>;
  /**
   * The organization the job works for (the one whose domain, webhook or app it is about), or null
   * for the platform's own work. Workers share their slots out by it (`claimJobs`).
   */
  orgId: string | null;
  runAt: string;
}

/**
 * The job queue (lease protocol in docs/architecture.md). A claimed job is leased to one worker:
 * only the lease holder may complete, reschedule or fail it, and a lease older than the lease time
 * is freed by `releaseExpiredLeases` so another worker takes the job. A lease holder re-checks that
 * the work is still needed before doing it: the world may have changed since the job was queued.
 */
export interface JobStore {
  /**
   * Inserts the job, or when one with this key exists, moves its `run_at` to the new time, replaces
   * its payload and bumps its revision (so a run in progress does not delete the new request).
   */
  enqueueJob(job: NewJob, id: string, now: string): Promise<void>;
  /**
   * Leases up to `limit` due jobs of `kinds` to `workerId`, incrementing `attempts`; answers them
   * earliest first. Shared fairly: per kind, each organization's next job takes its turn (its jobs
   * running anywhere count as turns taken), earliest due first among equal turns, so one
   * organization's backlog never holds up another's work. With `perOrgLimit`, never more than that
   * many jobs of one organization run on `workerId` at once, counting those it already holds.
   * No job is leased to two workers at once (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one
   * write transaction).
   */
  claimJobs(
    workerId: string,
    kinds: readonly string[],
    limit: number,
    now: string,
    perOrgLimit?: number,
  ): Promise<Job[]>;
  /**
   * Leases the job with this key to `workerId` if it exists and nobody holds it, whatever its
   * `run_at` (a request wants it run now). Answers undefined when it is missing or leased.
   */
  claimJob(key: string, workerId: string, now: string): Promise<Job | undefined>;
  /**
   * Done: deletes the job, unless it was enqueued again while it ran (revision changed), in which
   * case it is unlocked to run again. Answers false when `workerId` no longer holds the lease.
   */
  completeJob(job: Job, workerId: string): Promise<boolean>;
  /** Unlocks the job to run again at `runAt` (recurring jobs, retries), recording `error` if given. */
  rescheduleJob(job: Job, workerId: string, runAt: string, error?: string | null): Promise<boolean>;
  /**
   * Renews `workerId`'s leases on these jobs (sets `locked_at` to `now`): a worker that is alive
   * keeps its jobs however long they take, and only a dead one's leases expire.
   */
  extendLeases(workerId: string, jobIds: readonly string[], now: string): Promise<void>;
  /** Frees leases taken before `lockedBefore` (their workers died or hung). Answers how many. */
  releaseExpiredLeases(lockedBefore: string): Promise<number>;
  /** Frees every lease `workerId` holds (graceful shutdown, or its process is known to be gone). */
  releaseLeases(workerId: string): Promise<number>;
  /** Who holds leases now, each once: a handful of workers, live or lately dead. */
  leaseHolders(): Promise<string[]>;
  findJob(key: string): Promise<Job | undefined>;
  deleteJob(key: string): Promise<void>;
  countJobs(kind?: string): Promise<number>;
  /** Per kind: jobs due by `now` and not leased, and the oldest due `run_at` (metrics: depth and lag). */
  jobQueueStats(now: string): Promise<{ kind: string; due: number; oldestRunAt: string | null }[]>;
}

export type CertificateStatus = 'pending' | 'issued' | 'failed';

/**
 * The current certificate of a served hostname. `privateKeyEnc` is the key encrypted at rest
 * (secrets/secret-box.ts); nothing in the store ever holds a private key in plain text.
 */
export interface CertificateRecord {
  hostname: string;
  domainId: string | null;
  appId: string | null;
  /** pending: asked for, none yet; issued: `certificatePem` is valid to serve; failed: the last attempt failed (a previous certificate, if any, is still served). */
  status: CertificateStatus;
  issuer: string | null;
  certificatePem: string | null;
  privateKeyEnc: string | null;
  notBefore: string | null;
  notAfter: string | null;
  renewAt: string | null;
  lastError: string | null;
  /** The stable code of the last failed attempt (docs/errors.md); null after a success, or beside a note (a wait). */
  lastErrorCode: string | null;
  /** When `certificate.expiring` was announced for the certificate served now; null until it is. */
  expiryAlertedAt: string | null;
  /**
   * The renewal window the CA suggested for the certificate served now (ACME Renewal Information,
   * RFC 9773), null when it has none or was not asked yet; `renewAt` is then a moment picked in it.
   */
  ariWindowStart: string | null;
  ariWindowEnd: string | null;
  /** When to ask the CA for the window again (its Retry-After, bounded); null: at the next renewal check. */
  ariNextPollAt: string | null;
  /** The ACME directory URL of the CA that issued the certificate; null for the local CA or none yet. */
  caDirectory: string | null;
  failures: number;
  createdAt: string;
  updatedAt: string;
}

/**
 * The certificate of a name that is no longer served (removed, moved, handed over), waiting to be
 * revoked at the CA. It holds the key, sealed as the certificate row held it, until the revocation
 * is done or given up: then the row goes, and the key with it.
 */
export interface CertificateRevocation {
  id: string;
  hostname: string;
  issuer: string | null;
  certificatePem: string;
  privateKeyEnc: string | null;
  /** RFC 5280's name of the reason: `cessationOfOperation` or `superseded`. */
  reason: string;
  /** The organization the name was served for; null for the platform's own names. */
  orgId: string | null;
  notAfter: string | null;
  /** The ACME directory URL of the CA that issued it (which alone can revoke it); null when not known. */
  caDirectory: string | null;
  createdAt: string;
}

/** Issued certificates by the fraction of their lifetime left (metrics). */
export interface CertificateLifetimeStats {
  /** For each fraction asked about, in order: how many have less than that fraction left (expired ones included). */
  below: number[];
  /** The least fraction left on any issued certificate (negative once expired); null when there is none. */
  leastLeft: number | null;
}

export interface CertificateStore {
  findCertificate(hostname: string): Promise<CertificateRecord | undefined>;
  /**
   * The certificates that can be served (a chain, its sealed key and its expiry), `limit` at a time
   * in hostname order after `afterHostname` ('' for the first page): the edge's snapshot.
   */
  listServableCertificates(afterHostname: string, limit: number): Promise<CertificateRecord[]>;
  /**
   * Inserts the record unless the hostname has one; answers whether it did. Concurrent callers
   * insert one row, and a certificate already issued is never replaced.
   */
  insertCertificateIfAbsent(record: CertificateRecord): Promise<boolean>;
  findCertificatesByDomainIds(domainIds: readonly string[]): Promise<CertificateRecord[]>;
  /** Inserts or replaces the hostname's row as a whole, in one statement (atomic for readers). */
  putCertificate(record: CertificateRecord): Promise<void>;
  /**
   * Records a failed attempt (its message and stable code) without touching a certificate that is
   * still being served.
   */
  recordCertificateFailure(hostname: string, error: string, now: string, code?: string | null): Promise<void>;
  /**
   * Notes in `last_error` why no order could be placed yet (a rate limit), changing nothing else:
   * no failure is counted and a certificate being served stays. A hostname without a row is left alone.
   */
  recordCertificateWait(hostname: string, reason: string, now: string): Promise<void>;
  /**
   * Stores what the CA said of the renewal of the certificate that expires at `notAfter` (the
   * window, the next poll, the moment picked), only while that certificate is still the one
   * stored: a renewal that replaced it meanwhile is left alone. Answers whether it did.
   */
  recordCertificateRenewalInfo(
    hostname: string,
    notAfter: string,
    info: Pick<CertificateRecord, 'ariWindowStart' | 'ariWindowEnd' | 'ariNextPollAt' | 'renewAt'>,
  ): Promise<boolean>;
  deleteCertificate(hostname: string): Promise<void>;
  deleteCertificatesOfDomain(domainId: string): Promise<CertificateRecord[]>;
  /** Every certificate served for the app: its default hostname's and its domains'. */
  deleteCertificatesOfApp(appId: string): Promise<CertificateRecord[]>;
  /**
   * Logs an order placed with the CA (the per-account rate limit counts them), on the budget of
   * organization `orgId`, or of the platform when it is null or absent.
   */
  recordCertificateOrder(
    id: string,
    hostname: string,
    outcome: string,
    now: string,
    orgId?: string | null,
  ): Promise<void>;
  /** Orders since `since`, optionally of one outcome (`placed`, `issued`, `failed:…`) and one hostname. */
  countCertificateOrders(since: string, outcome?: string, hostname?: string): Promise<number>;
  /** Orders of one `outcome` since `since` on the budget of `orgId` (null: the platform's). */
  countCertificateOrdersOf(orgId: string | null, since: string, outcome: string): Promise<number>;
  /**
   * Inside a transaction, holds the order log's lock until commit, so that counting orders and
   * recording a new one is atomic across workers and nodes (PostgreSQL: a row lock; SQLite
   * transactions are serialized already). Outside a transaction it does nothing useful.
   */
  lockCertificateOrders(): Promise<void>;
  /** The soonest `not_after` of issued certificates, and how many expire before `soon` (metrics). */
  certificateExpiryStats(soon: string): Promise<{ soonestNotAfter: string | null; expiringSoon: number }>;
  /** Issued certificates by the fraction of their lifetime left at `now`, below each of `fractions`. */
  certificateLifetimeStats(now: string, fractions: readonly number[]): Promise<CertificateLifetimeStats>;
  /**
   * Notes that `certificate.expiring` was announced for the hostname's certificate that expires at
   * `notAfter`, unless it was already (or the certificate was replaced): answers whether this call
   * noted it, so concurrent or repeated callers announce it once.
   */
  markCertificateExpiryAlerted(hostname: string, notAfter: string, now: string): Promise<boolean>;
  insertCertificateRevocation(revocation: CertificateRevocation): Promise<void>;
  findCertificateRevocation(id: string): Promise<CertificateRevocation | undefined>;
  /** Deletes the revocation and the key it held; answers whether it existed. */
  deleteCertificateRevocation(id: string): Promise<boolean>;
  /** Revocations waiting (metrics). */
  countCertificateRevocations(): Promise<number>;
}

/**
 * ACME challenge answers (key authorizations) while the CA validates. `key` is an HTTP-01 token or,
 * for TLS-ALPN-01, `tlsAlpnChallengeKey(hostname)` (src/acme/issuer.ts): one table for both.
 */
export interface ChallengeRecordStore {
  /** Stores the answer under `key`, replacing one already there. */
  putChallenge(key: string, keyAuthorization: string, now: string): Promise<void>;
  /** The answer under `key`, or undefined. */
  findChallenge(key: string): Promise<string | undefined>;
  /** Forgets `key`; a key that is not there is not an error. */
  deleteChallenge(key: string): Promise<void>;
}

/**
 * One TXT value of a delegated DNS-01 challenge: the `dns` role answers it at
 * `{label}.{PORTICO_ACME_DNS_ZONE}` until `expiresAt`, on every dns node (src/dns-server/).
 */
export interface DnsChallengeRecord {
  /** One DNS label, lowercase (the dns role compares names lowercased): the claim's delegation label. */
  label: string;
  /** The TXT value: for DNS-01, the base64url SHA-256 digest of the key authorization (RFC 8555 8.4). */
  value: string;
  /** The claim it answers for (deleting the claim deletes the record), or null for the platform's own names. */
  domainId: string | null;
  createdAt: string;
  /** No longer answered from this time on, whether or not anyone removed it. */
  expiresAt: string;
}

/**
 * The TXT records of the challenge zone. Writers are the issuers on any worker; readers, the dns
 * role on every dns node, which reads per query (no cache), so a value whose `putDnsChallenge` has
 * returned (outside a transaction, or once its transaction commits) is answered by every node from
 * the next query on: put, then tell the CA to validate.
 */
export interface DnsChallengeStore {
  /**
   * Adds `value` at `label`, beside any other values there (two challenges for one name, as for
   * `acme.com` and `*.acme.com`, are two values at one label); the same value again takes the new
   * `expiresAt` and `domainId`. Answers false, storing nothing, when `domainId` names a claim that
   * no longer exists.
   */
  putDnsChallenge(record: DnsChallengeRecord): Promise<boolean>;
  /** Removes `value` from `label` (its challenge is over); one that is not there is not an error. */
  removeDnsChallenge(label: string, value: string): Promise<void>;
  /**
   * The values answered now at each of `labels`: those expiring after `now`, oldest first at each
   * label. One read for many labels, so a dns node under load asks once for the queries that
   * arrived together (dns-server/batched-values.ts).
   */
  listDnsChallengeValues(labels: readonly string[], now: string): Promise<{ label: string; value: string }[]>;
  /** Deletes at most `limit` records that expired at or before `now`; answers how many went. */
  deleteExpiredDnsChallenges(now: string, limit: number): Promise<number>;
}

export interface SettingStore {
  findSetting(key: string): Promise<string | undefined>;
  /** Stores `value` unless the key exists; answers the value that is stored now (the first writer wins). */
  putSettingIfAbsent(key: string, value: string, now: string): Promise<string>;
}

export interface EventRecord {
  id: string;
  orgId: string;
  type: string;
  payload: Record<string, unknown>;
  createdAt: string;
}

export interface Webhook {
  id: string;
  orgId: string;
  url: string;
  /** Event types delivered, or `['*']` for all. */
  events: string[];
  /** The signing secret, sealed; opened only to sign a delivery. */
  secretEnc: string;
  createdAt: string;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';
export interface WebhookDelivery {
  id: string;
  webhookId: string;
  eventId: string;
  status: DeliveryStatus;
  attempts: number;
  responseStatus: number | null;
  lastError: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface WebhookStore {
  insertEvent(event: EventRecord): Promise<void>;
  findEvent(id: string): Promise<EventRecord | undefined>;
  /** The events with these ids that exist, in no particular order. */
  findEvents(ids: readonly string[]): Promise<EventRecord[]>;
  insertWebhook(webhook: Webhook): Promise<void>;
  findWebhook(orgId: string, id: string): Promise<Webhook | undefined>;
  /** Any organization's webhook: for the delivering worker. */
  findWebhookById(id: string): Promise<Webhook | undefined>;
  listWebhooks(orgId: string, page: Page): Promise<PageOf<Webhook>>;
  /** Deletes the webhook and its delivery log. Answers whether it existed. */
  deleteWebhook(orgId: string, id: string): Promise<boolean>;
  insertDelivery(delivery: WebhookDelivery): Promise<void>;
  findDelivery(id: string): Promise<WebhookDelivery | undefined>;
  updateDelivery(
    id: string,
    patch: Pick<WebhookDelivery, 'status' | 'attempts' | 'responseStatus' | 'lastError' | 'updatedAt'>,
  ): Promise<void>;
  /** Newest first. */
  listDeliveries(webhookId: string, page: Page): Promise<PageOf<WebhookDelivery>>;
  /**
   * Deletes at most `limit` finished deliveries (delivered or failed) made before `cutoff`, then at
   * most `limit` events made before it that no delivery refers to any more; answers how many of
   * each went. A pending delivery and its event are kept whatever their age.
   */
  deleteWebhookHistoryBefore(cutoff: string, limit: number): Promise<{ deliveries: number; events: number }>;
}

export interface IdempotentRequest {
  requestHash: string;
  /** null while the first request with this key is still being answered. */
  responseStatus: number | null;
  /** The answer's body, sealed by the API (it may hold a secret): the store never sees it in plain text. */
  responseBody: string | null;
  createdAt: string;
}

export interface IdempotencyStore {
  /**
   * Claims `key` for a request about to run: answers undefined when this caller got it, or the
   * record already there (another request's, answered or in progress). Atomic across nodes.
   */
  claimIdempotencyKey(
    orgId: string,
    key: string,
    requestHash: string,
    now: string,
  ): Promise<IdempotentRequest | undefined>;
  saveIdempotentResponse(orgId: string, key: string, status: number, body: string): Promise<void>;
  /** Forgets a key (its request failed on our side, or its record expired), so it can be used again. */
  releaseIdempotencyKey(orgId: string, key: string): Promise<void>;
  /** Deletes at most `limit` records made before `cutoff` (expired); answers how many went. */
  deleteIdempotencyKeysBefore(cutoff: string, limit: number): Promise<number>;
}

/** A unique index refused a write; `index` names it as the migrations do. */
export class UniqueViolation extends Error {
  constructor(readonly index: string) {
    super(`unique violation on ${index}`);
    this.name = 'UniqueViolation';
  }
}
