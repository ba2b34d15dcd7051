import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Agent, request } from 'undici';
import { addSeconds, type Clock, iso } from '../domain/clock.js';
import { errors } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { parseTenantUrl } from '../domain/origin-url.js';
import { guardedConnector } from '../net/guarded-connector.js';
import type { SecretBox } from '../secrets/secret-box.js';
import type { Domain, JobOutcome, Page, PageOf, Store, Webhook, WebhookDelivery } from '../store/store.js';

/**
 * Events and webhooks (docs/webhooks.md). Every status change is an event, recorded in the
 * transaction that made the change; each webhook of the organization that wants it gets a delivery,
 * a job of its own, retried on the schedule below and logged where the API can show it.
 */
export const EVENT_TYPES = [
  'domain.verified',
  'domain.failed',
  'domain.moved',
  'domain.active',
  'domain.routing_changed',
  'domain.degraded',
  'domain.recovered',
  'certificate.issued',
  'certificate.renewed',
  'certificate.failed',
  'certificate.expiring',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const DELIVER_JOB = 'webhook:deliver';
export const SIGNATURE_HEADER = 'portico-signature';
export const EVENT_HEADER = 'portico-event';
export const DELIVERY_HEADER = 'portico-delivery';

/**
 * After a failed attempt, how long until the next, by attempts so far: a receiver that is briefly
 * down gets the event within minutes; one that is down for a day still gets it, and then the
 * delivery is marked failed (visible in the log) instead of retrying forever.
 *
 *   attempt   1     2      3      4       5     6     7      8
 *   retry in  10 s  1 min  5 min  30 min  2 h   6 h   12 h   (failed)
 */
const RETRY_SECONDS = [10, 60, 5 * 60, 30 * 60, 2 * 3600, 6 * 3600, 12 * 3600];
export const MAX_ATTEMPTS = RETRY_SECONDS.length + 1;
/** A receiver gets this long to answer; a slow receiver must not hold a worker slot. */
const DELIVERY_TIMEOUT_MS = 10_000;

/**
 * `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: the timestamp is signed with the
 * body so a captured request cannot be replayed later with a fresh timestamp.
 */
export function sign(secret: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return `t=${timestamp},v1=${mac}`;
}

/**
 * What a receiver runs (docs/webhooks.md has the same in a few lines): true when `header` is a
 * valid signature of `body` with `secret`, made within `toleranceSeconds` of `nowSeconds`.
 */
export function verifySignature(
  secret: string,
  header: string,
  body: string,
  nowSeconds: number,
  toleranceSeconds = 300,
): boolean {
  const parts = Object.fromEntries(header.split(',').map((part) => part.split('=', 2) as [string, string]));
  const timestamp = Number(parts.t);
  if (!Number.isInteger(timestamp) || Math.abs(nowSeconds - timestamp) > toleranceSeconds || !parts.v1)
    return false;
  const expected = Buffer.from(sign(secret, timestamp, body).split('v1=')[1] ?? '', 'hex');
  const given = Buffer.from(parts.v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export interface WebhookSettings {
  allowPrivateOrigins: boolean;
}

export class WebhookService {
  private readonly agent: Agent;

  constructor(
    private readonly store: Store,
    private readonly box: SecretBox,
    private readonly settings: WebhookSettings,
    private readonly clock: Clock,
    /** Told of each attempt's outcome (metrics). */
    private readonly onAttempt?: (outcome: 'delivered' | 'retrying' | 'failed') => void,
  ) {
    // Receivers are tenant-chosen URLs: the same SSRF guard as the edge's origins.
    this.agent = new Agent({
      connect: guardedConnector({
        timeoutMs: DELIVERY_TIMEOUT_MS,
        allowPrivate: settings.allowPrivateOrigins,
      }),
      headersTimeout: DELIVERY_TIMEOUT_MS,
      bodyTimeout: DELIVERY_TIMEOUT_MS,
    });
  }

  /** Registers a webhook; the secret (given or generated) is answered only now. */
  async create(orgId: string, input: { url: string; events?: string[]; secret?: string }) {
    const url = parseTenantUrl(input.url, this.settings.allowPrivateOrigins, {
      invalid: (reason) => errors.webhookUrlInvalid(input.url, reason),
      private: () => errors.webhookUrlPrivate(input.url),
    });
    const events = input.events?.length ? [...new Set(input.events)] : ['*'];
    const unknown = events.filter(
      (type) => type !== '*' && !(EVENT_TYPES as readonly string[]).includes(type),
    );
    if (unknown.length) throw errors.webhookEventUnknown(unknown, EVENT_TYPES);
    const secret = input.secret ?? `whsec_${randomBytes(24).toString('base64url')}`;
    const webhook: Webhook = {
      id: newId('wh'),
      orgId,
      url,
      events,
      secretEnc: this.box.seal(secret),
      createdAt: iso(this.clock.now()),
    };
    await this.store.insertWebhook(webhook);
    return { webhook, secret };
  }

  list(orgId: string, page: Page): Promise<PageOf<Webhook>> {
    return this.store.listWebhooks(orgId, page);
  }

  async get(orgId: string, id: string): Promise<Webhook> {
    const webhook = await this.store.findWebhook(orgId, id);
    if (!webhook) throw errors.webhookNotFound(id);
    return webhook;
  }

  async remove(orgId: string, id: string): Promise<void> {
    if (!(await this.store.deleteWebhook(orgId, id))) throw errors.webhookNotFound(id);
  }

  async deliveries(
    orgId: string,
    id: string,
    page: Page,
  ): Promise<PageOf<WebhookDelivery & { eventType?: string }>> {
    await this.get(orgId, id);
    const result = await this.store.listDeliveries(id, page);
    // One query for the page's events, not one per delivery.
    const events = await this.store.findEvents([...new Set(result.rows.map((delivery) => delivery.eventId))]);
    const typeOf = new Map(events.map((event) => [event.id, event.type]));
    const rows = result.rows.map((delivery) => ({ ...delivery, eventType: typeOf.get(delivery.eventId) }));
    return { rows, total: result.total };
  }

  /**
   * Records an event about a domain and queues a delivery for each webhook of its organization
   * that subscribes to it; runs in the caller's transaction, so an event exists exactly when the
   * change does.
   */
  async record(
    tx: Store,
    type: EventType,
    domain: Domain,
    now: Date,
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    const event = {
      id: newId('evt'),
      orgId: domain.orgId,
      type,
      createdAt: iso(now),
      payload: {
        domain: domain.name,
        app_id: domain.appId,
        status: domain.status,
        verified_at: domain.verifiedAt,
        verification_errors: domain.verificationErrors,
        routing: { ok: domain.routingVia !== null, via: domain.routingVia, observed: domain.routingObserved },
        ...extra,
      },
    };
    await tx.insertEvent(event);
    // An organization has a handful of webhooks; listing them is cheaper than another index.
    const { rows: webhooks } = await tx.listWebhooks(domain.orgId, { limit: 1000, offset: 0 });
    for (const webhook of webhooks) {
      if (!webhook.events.includes('*') && !webhook.events.includes(type)) continue;
      const delivery: WebhookDelivery = {
        id: newId('dlv'),
        webhookId: webhook.id,
        eventId: event.id,
        status: 'pending',
        attempts: 0,
        responseStatus: null,
        lastError: null,
        createdAt: iso(now),
        updatedAt: iso(now),
      };
      await tx.insertDelivery(delivery);
      await tx.enqueueJob(
        {
          kind: DELIVER_JOB,
          key: `${DELIVER_JOB}:${delivery.id}`,
          payload: { deliveryId: delivery.id },
          orgId: webhook.orgId,
          runAt: iso(now),
        },
        newId('job'),
        iso(now),
      );
    }
  }

  /** The `webhook:deliver` job: one attempt, its outcome logged on the delivery. */
  async deliver(deliveryId: string, signal: AbortSignal): Promise<JobOutcome> {
    const delivery = await this.store.findDelivery(deliveryId);
    if (delivery?.status !== 'pending') return undefined;
    const [webhook, event] = await Promise.all([
      this.store.findWebhookById(delivery.webhookId),
      this.store.findEvent(delivery.eventId),
    ]);
    if (!webhook || !event) return undefined;

    const body = JSON.stringify({
      id: event.id,
      type: event.type,
      created_at: event.createdAt,
      data: event.payload,
    });
    const timestamp = Math.floor(this.clock.now().getTime() / 1000);
    let responseStatus: number | null = null;
    let failure: string | null = null;
    try {
      const response = await request(webhook.url, {
        method: 'POST',
        dispatcher: this.agent,
        signal,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Portico-Webhooks/1',
          [SIGNATURE_HEADER]: sign(this.box.open(webhook.secretEnc), timestamp, body),
          [EVENT_HEADER]: event.type,
          [DELIVERY_HEADER]: delivery.id,
        },
        body,
      });
      responseStatus = response.statusCode;
      await response.body.dump();
      if (responseStatus < 200 || responseStatus > 299) failure = `the receiver answered ${responseStatus}`;
    } catch (error) {
      failure = `could not deliver: ${error instanceof Error ? error.message : String(error)}`;
    }

    const attempts = delivery.attempts + 1;
    const now = this.clock.now();
    const done = failure === null;
    const exhausted = !done && attempts >= MAX_ATTEMPTS;
    await this.store.updateDelivery(delivery.id, {
      status: done ? 'delivered' : exhausted ? 'failed' : 'pending',
      attempts,
      responseStatus,
      lastError: failure,
      updatedAt: iso(now),
    });
    this.onAttempt?.(done ? 'delivered' : exhausted ? 'failed' : 'retrying');
    if (done || exhausted) return undefined;
    return { retryAt: addSeconds(now, RETRY_SECONDS[attempts - 1] ?? 12 * 3600), error: failure ?? '' };
  }
}
