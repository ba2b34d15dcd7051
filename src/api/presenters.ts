import { isDefinitive } from '../dns/checks.js';
import { type DnsSettings, requiredDnsRecords, routingTargets } from '../domain/dns-records.js';
import { isWildcard } from '../domain/hostname.js';
import { isLive, MOVED_AFTER_FAILURES, STATUS_TABLE } from '../domain/lifecycle.js';
import { defaultHostname, httpsUrl } from '../domain/serving.js';
import type {
  App,
  CertificateRecord,
  Domain,
  PageOf,
  ServingReport,
  Webhook,
  WebhookDelivery,
} from '../store/store.js';
import type { AppResponse } from './schemas/apps.js';
import type { DomainResponse } from './schemas/domains.js';
import type { DeliveryResponse, WebhookResponse } from './schemas/webhooks.js';

/** Store records to API bodies. The only place that knows both shapes. */

export function toAppResponse(app: App, appsDomain: string): AppResponse {
  return {
    app_id: app.id,
    slug: app.slug,
    meta: { title: app.title, description: app.description },
    origin_url: app.originUrl,
    default_hostname: defaultHostname(app.slug, appsDomain),
    created_at: app.createdAt,
    updated_at: app.updatedAt,
  };
}

/** What the API says of a domain's certificate; never the key, not even encrypted. */
function toCertificateInfo(record: CertificateRecord | undefined): DomainResponse['certificate'] {
  if (!record) return null;
  return {
    status: record.status,
    // The CA by its directory URL (which tells Let's Encrypt's production from its staging, and one
    // directory of a CA from another on the same host); `acme` for certificates older than that record.
    issuer: record.issuer === 'acme' ? (record.caDirectory ?? 'acme') : record.issuer,
    not_before: record.notBefore,
    not_after: record.notAfter,
    last_error: record.lastError,
    last_error_code: record.lastErrorCode,
  };
}

/** The last serving probe, as the API and `domain.degraded` / `domain.recovered` events show it. */
export function toServingBody(report: ServingReport): NonNullable<DomainResponse['serving']> {
  return {
    checked_at: report.checkedAt,
    ok: report.ok,
    edges: report.edges.map((edge) => ({
      address: edge.address,
      ok: edge.ok,
      certificate_sha256: edge.certificateSha256,
      status: edge.status,
      error: edge.error,
    })),
  };
}

/** What a domain's presentation depends on besides the domain: DNS settings and the edge's HTTPS port. */
export interface DomainSettings extends DnsSettings {
  /** 0: not known here (an API node whose PORTICO_EDGE_HTTPS_PORT is 0 and has no edge of its own). */
  edgeHttpsPort: number;
}

export function toDomainResponse(
  domain: Domain,
  settings: DomainSettings,
  certificate?: CertificateRecord,
): DomainResponse {
  return {
    domain: domain.name,
    status: domain.status,
    verification_token: domain.verificationToken,
    cname_target: settings.cnameTarget,
    is_primary: domain.isPrimary,
    verified_at: domain.verifiedAt,
    app_id: domain.appId,
    created_at: domain.createdAt,
    dns_records: requiredDnsRecords(domain.name, domain.verificationToken, domain.orgId, settings),
    last_checked_at: domain.lastCheckedAt,
    next_check_at: domain.nextCheckAt,
    verification_errors: domain.verificationErrors.map(({ code, message }) => ({
      code,
      message,
      definitive: isDefinitive(code),
    })),
    routing: {
      configured: routingTargets(domain.name, settings),
      observed: domain.routingObserved,
      ok: domain.routingVia !== null,
      via: domain.routingVia,
    },
    certificate: toCertificateInfo(certificate),
    // The streak only means something while re-checks watch the domain; a moved domain keeps its
    // last count in the store until it is verified again.
    reverify_failures: isLive(domain.status) ? domain.failureStreak : null,
    moved_after_failures: MOVED_AFTER_FAILURES,
    // Shown while the edges serve the domain; a report from an earlier time it was served says nothing now.
    serving: STATUS_TABLE[domain.status].served && domain.serving ? toServingBody(domain.serving) : null,
    // The edge's own spelling of the address (its redirects use the same), so the two never differ.
    // A wildcard has no one address (each name under it is one).
    ...(settings.edgeHttpsPort && !isWildcard(domain.name)
      ? { url: httpsUrl(domain.name, settings.edgeHttpsPort, '/') }
      : {}),
  };
}

/** A webhook; its signing secret only when it was just made (shown once). */
export function toWebhookResponse(webhook: Webhook, secret?: string): WebhookResponse {
  return {
    webhook_id: webhook.id,
    url: webhook.url,
    events: webhook.events,
    created_at: webhook.createdAt,
    ...(secret ? { secret } : {}),
  };
}

export function toDeliveryResponse(delivery: WebhookDelivery & { eventType?: string }): DeliveryResponse {
  return {
    delivery_id: delivery.id,
    event_id: delivery.eventId,
    event_type: delivery.eventType ?? null,
    status: delivery.status,
    attempts: delivery.attempts,
    response_status: delivery.responseStatus,
    last_error: delivery.lastError,
    created_at: delivery.createdAt,
    updated_at: delivery.updatedAt,
  };
}

export function toListResponse<T, R>(
  page: PageOf<T>,
  query: { limit: number; offset: number },
  present: (row: T) => R,
): { results: R[]; pagination: { total: number; limit: number; offset: number; has_next: boolean } } {
  return {
    results: page.rows.map(present),
    pagination: {
      total: page.total,
      limit: query.limit,
      offset: query.offset,
      has_next: query.offset + page.rows.length < page.total,
    },
  };
}
