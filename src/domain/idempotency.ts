/** How long an Idempotency-Key and its answer are kept: a client retrying later than this is a new request. */
export const IDEMPOTENCY_KEY_LIFETIME_MS = 24 * 3600_000;
/** A claim whose request never answered (its node died) is taken over after this long. */
export const IDEMPOTENCY_CLAIM_ABANDONED_MS = 60_000;
