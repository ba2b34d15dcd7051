import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type Clock, iso } from '../domain/clock.js';
import { errors } from '../domain/errors.js';
import { IDEMPOTENCY_CLAIM_ABANDONED_MS, IDEMPOTENCY_KEY_LIFETIME_MS } from '../domain/idempotency.js';
import type { SecretBox } from '../secrets/secret-box.js';
import type { Store } from '../store/store.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set when this request holds an Idempotency-Key claim whose answer must be kept. */
    idempotencyKey?: string;
  }
}

const VALID_KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * `Idempotency-Key` on POST requests, as Stripe defines it: the same key with the same request
 * within 24 hours gets the first answer again (with `Idempotent-Replayed: true`) and changes
 * nothing; the same key with another request is refused (409). The claim is taken before the
 * request runs, so two concurrent retries never both run. A 5xx answer is not kept: the client
 * may retry with the same key.
 *
 * The kept answer is stored sealed (secrets/secret-box.ts), never in plain text: some answers carry a
 * secret shown only once (a webhook's signing secret), and a repeat must show it again, exactly as
 * the first answer did, so it can be neither dropped nor hashed. Sealing every answer rather than
 * the ones known to hold a secret means a new route cannot forget to.
 */
export function idempotencyHooks(store: Store, clock: Clock, box: SecretBox) {
  const preHandler = async (request: FastifyRequest, reply: FastifyReply) => {
    const key = request.headers['idempotency-key'];
    if (request.method !== 'POST' || key === undefined) return;
    if (typeof key !== 'string' || !VALID_KEY.test(key)) throw errors.idempotencyKeyInvalid();
    const { orgId } = request.principal;
    const hash = createHash('sha256')
      .update(`${request.method} ${request.url}\n${JSON.stringify(request.body ?? null)}`)
      .digest('hex');
    const now = clock.now();
    let existing = await store.claimIdempotencyKey(orgId, key, hash, iso(now));
    if (existing) {
      const age = now.getTime() - Date.parse(existing.createdAt);
      const stale =
        age > IDEMPOTENCY_KEY_LIFETIME_MS ||
        (existing.responseStatus === null && age > IDEMPOTENCY_CLAIM_ABANDONED_MS);
      if (stale) {
        await store.releaseIdempotencyKey(orgId, key);
        existing = await store.claimIdempotencyKey(orgId, key, hash, iso(now));
      }
    }
    if (!existing) {
      request.idempotencyKey = key;
      return;
    }
    if (existing.requestHash !== hash) throw errors.idempotencyKeyReused();
    if (existing.responseStatus === null || existing.responseBody === null)
      throw errors.idempotencyKeyInProgress();
    return reply
      .code(existing.responseStatus)
      .header('idempotent-replayed', 'true')
      .type('application/json; charset=utf-8')
      .send(openKeptAnswer(box, existing.responseBody));
  };

  const onSend = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const key = request.idempotencyKey;
    if (!key) return payload;
    const { orgId } = request.principal;
    if (reply.statusCode >= 500) await store.releaseIdempotencyKey(orgId, key);
    else await store.saveIdempotentResponse(orgId, key, reply.statusCode, box.seal(String(payload)));
    return payload;
  };

  return { preHandler, onSend };
}

function openKeptAnswer(box: SecretBox, sealed: string): string {
  try {
    return box.open(sealed);
  } catch (error) {
    // A 500 (and this line in the log) rather than running the request a second time.
    throw new Error(
      'an Idempotency-Key answer kept in the store cannot be opened: was PORTICO_ENCRYPTION_KEY changed?',
      { cause: error },
    );
  }
}
