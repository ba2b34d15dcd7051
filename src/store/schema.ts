import type { Generated } from 'kysely';

/**
 * The tables as kysely sees them. Column types are chosen so one query layer runs unchanged on
 * SQLite and PostgreSQL:
 * - timestamps are ISO 8601 UTC text with milliseconds (`Date#toISOString()`), which sorts in
 *   time order as text and round-trips without driver-specific Date handling;
 * - booleans are integers 0/1 (SQLite has no boolean type);
 * - structured values are JSON text.
 */
export interface Database {
  organizations: OrganizationsTable;
  api_keys: ApiKeysTable;
  apps: AppsTable;
  domains: DomainsTable;
  jobs: JobsTable;
  certificates: CertificatesTable;
  acme_challenges: AcmeChallengesTable;
  dns_challenges: DnsChallengesTable;
  certificate_orders: CertificateOrdersTable;
  certificate_revocations: CertificateRevocationsTable;
  settings: SettingsTable;
  events: EventsTable;
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  idempotency_keys: IdempotencyKeysTable;
  slug_holds: SlugHoldsTable;
}

export interface OrganizationsTable {
  id: string;
  name: string;
  created_at: string;
  /** Domains held on all its apps; kept in step by the domain writes (the quota reads it). */
  domain_count: Generated<number>;
  /** Apps it has; kept in step by the app writes (the quota reads it). */
  app_count: Generated<number>;
}

export interface ApiKeysTable {
  id: string;
  org_id: string;
  name: string;
  scope: 'read' | 'write';
  /** First 16 hex characters of SHA-256(key): finds the row without comparing secrets in SQL. */
  lookup: string;
  /** SHA-256(key), hex; compared in constant time after the lookup. The key itself is never stored. */
  hash: string;
  created_at: string;
}

export interface AppsTable {
  id: string;
  org_id: string;
  slug: string;
  title: string;
  description: string | null;
  origin_url: string | null;
  created_at: string;
  updated_at: string;
}

export interface DomainsTable {
  id: string;
  app_id: string;
  org_id: string;
  name: string;
  status: string;
  is_primary: number;
  verification_token: string;
  created_at: string;
  updated_at: string;
  verified_at: string | null;
  verifying_since: string | null;
  last_checked_at: string | null;
  next_check_at: string | null;
  /** JSON: `[{code, message}]` from the last check. */
  verification_errors: string;
  /** JSON: what DNS answered for routing on the last check, e.g. `["CNAME cname.apps.example.net"]`. */
  routing_observed: string;
  /** How traffic was last seen to reach the platform: 'dns', 'proxy', or NULL (not seen, or not checked). */
  routing_via: string | null;
  /** Definitive failed re-checks in a row; three make an active domain `moved`. */
  failure_streak: Generated<number>;
  /** JSON: the last serving probe's report (`{checkedAt, ok, edges}`), or NULL when none ran. */
  serving: string | null;
}

export interface JobsTable {
  id: string;
  kind: string;
  /** Deduplication key: at most one pending job per key (e.g. `domain:verify:dom_…`). */
  key: string;
  payload: string;
  /** The organization the job works for; '' for the platform's own work. Claims share out by it. */
  org_id: Generated<string>;
  run_at: string;
  locked_by: string | null;
  locked_at: string | null;
  attempts: Generated<number>;
  /** Bumped whenever the job is enqueued again, so a worker finishing an older run does not drop the new request. */
  revision: Generated<number>;
  last_error: string | null;
  created_at: string;
}

export interface CertificatesTable {
  hostname: string;
  domain_id: string | null;
  app_id: string | null;
  status: string;
  issuer: string | null;
  certificate_pem: string | null;
  private_key_enc: string | null;
  not_before: string | null;
  not_after: string | null;
  renew_at: string | null;
  last_error: string | null;
  /** The stable code of the last failed attempt (`caa_forbidden`, …); null after a success or for a note. */
  last_error_code: string | null;
  /** When `certificate.expiring` was announced for this certificate (its `not_after`); null until then. */
  expiry_alerted_at: string | null;
  /** The renewal window the CA suggested (RFC 9773), and when to ask it again; null without ARI. */
  ari_window_start: string | null;
  ari_window_end: string | null;
  ari_next_poll_at: string | null;
  /** The ACME directory of the CA that issued the certificate; null for the local CA. */
  ca_directory: string | null;
  failures: Generated<number>;
  created_at: string;
  updated_at: string;
}

export interface AcmeChallengesTable {
  token: string;
  key_authorization: string;
  created_at: string;
}

/** Delegated DNS-01 TXT records (migration 0012): one row per value at a label of the challenge zone. */
export interface DnsChallengesTable {
  /** One DNS label, lowercase: the record's name is `{label}.{PORTICO_ACME_DNS_ZONE}`. */
  label: string;
  value: string;
  domain_id: string | null;
  created_at: string;
  expires_at: string;
}

export interface CertificateOrdersTable {
  id: string;
  hostname: string;
  outcome: string;
  created_at: string;
  /** The organization whose budget the order used; null for the platform's own names. */
  org_id: string | null;
}

export interface SlugHoldsTable {
  slug: string;
  /** The organization that may take the slug again at once. */
  org_id: string;
  held_until: string;
  created_at: string;
}

/** Certificates of names that left, waiting for the CA to revoke them; the row (and key) goes after. */
export interface CertificateRevocationsTable {
  id: string;
  hostname: string;
  issuer: string | null;
  certificate_pem: string;
  private_key_enc: string | null;
  reason: string;
  org_id: string | null;
  not_after: string | null;
  /** The ACME directory of the CA that issued it, which alone can revoke it; null for older rows. */
  ca_directory: string | null;
  created_at: string;
}

export interface SettingsTable {
  key: string;
  value: string;
  created_at: string;
}

export interface EventsTable {
  id: string;
  org_id: string;
  type: string;
  payload: string;
  created_at: string;
}

export interface WebhooksTable {
  id: string;
  org_id: string;
  url: string;
  events: string;
  secret_enc: string;
  created_at: string;
}

export interface WebhookDeliveriesTable {
  id: string;
  webhook_id: string;
  event_id: string;
  status: string;
  attempts: Generated<number>;
  response_status: number | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

export interface IdempotencyKeysTable {
  org_id: string;
  key: string;
  request_hash: string;
  response_status: number | null;
  /** Sealed (secrets/secret-box.ts) since migration 0011: an answer may carry a secret. */
  response_body: string | null;
  created_at: string;
}
