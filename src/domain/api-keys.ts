import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiKeyScope, Store } from '../store/store.js';
import { type Clock, iso } from './clock.js';
import { newId, randomAlphanumeric } from './ids.js';

/**
 * API keys. A key is shown once, when created; the store keeps only its SHA-256. Keys are
 * high-entropy random strings, so a fast hash is enough (no password-stretching needed): nobody
 * can guess a preimage. A 16-hex-character prefix of the hash finds the row; the full hash is then
 * compared in constant time.
 */
export interface Principal {
  orgId: string;
  keyId: string;
  scope: ApiKeyScope;
}

export function digestApiKey(key: string): { lookup: string; hash: string } {
  const hash = createHash('sha256').update(key, 'utf8').digest('hex');
  return { lookup: hash.slice(0, 16), hash };
}

/** Keys look like `pk_` + 40 characters of [a-z0-9] (about 206 random bits). */
export const generateApiKey = () => `pk_${randomAlphanumeric(40)}`;

export async function authenticate(store: Store, presented: string): Promise<Principal | undefined> {
  return authenticateDigest(store, digestApiKey(presented));
}

async function authenticateDigest(
  store: Store,
  { lookup, hash }: { lookup: string; hash: string },
): Promise<Principal | undefined> {
  const expected = Buffer.from(hash, 'hex');
  for (const candidate of await store.findApiKeysByLookup(lookup)) {
    if (timingSafeEqual(Buffer.from(candidate.hash, 'hex'), expected)) {
      return { orgId: candidate.orgId, keyId: candidate.id, scope: candidate.scope };
    }
  }
  return undefined;
}

/** How long an API node keeps using a key it has checked: a revoked key stops working within this. */
export const KEY_CACHE_SECONDS = 10;

/**
 * `authenticate` with a small memory of recent answers, so a client's every request does not cost a
 * hash lookup in the store. Bounded in size; an entry lives `ttlMs`, which is therefore how long a
 * revoked key may still work on a node that saw it recently. Unknown keys are not remembered, so a
 * key created on another node works at once.
 */
export class CachingAuthenticator {
  private readonly entries = new Map<string, { principal: Principal; expiresAt: number }>();

  constructor(
    private readonly store: Store,
    private readonly ttlMs = KEY_CACHE_SECONDS * 1000,
    private readonly maxEntries = 10_000,
  ) {}

  async authenticate(presented: string): Promise<Principal | undefined> {
    // Keyed by the digest, so no plaintext key outlives its request in memory.
    const digest = digestApiKey(presented);
    const now = Date.now();
    const cached = this.entries.get(digest.hash);
    if (cached && cached.expiresAt > now) return cached.principal;
    const principal = await authenticateDigest(this.store, digest);
    if (principal) {
      if (this.entries.size >= this.maxEntries)
        this.entries.delete(this.entries.keys().next().value as string);
      this.entries.set(digest.hash, { principal, expiresAt: now + this.ttlMs });
    } else {
      this.entries.delete(digest.hash);
    }
    return principal;
  }
}

export interface CreatedApiKey {
  key: string;
  keyId: string;
  orgId: string;
  scope: ApiKeyScope;
}

/**
 * Creates a key for the organization named `orgName` (created if missing). `key` may be given (the
 * operator's `PORTICO_BOOTSTRAP_KEY`); an identical key that already exists is kept, not duplicated.
 */
export async function createApiKey(
  store: Store,
  clock: Clock,
  options: { orgName: string; scope: ApiKeyScope; name?: string; key?: string },
): Promise<CreatedApiKey> {
  const key = options.key ?? generateApiKey();
  const now = iso(clock.now());
  return store.transaction(async (tx) => {
    const org = await tx.ensureOrganization(options.orgName, newId('org'), now);
    const { lookup, hash } = digestApiKey(key);
    const existing = (await tx.findApiKeysByLookup(lookup)).find((candidate) => candidate.hash === hash);
    if (existing) return { key, keyId: existing.id, orgId: existing.orgId, scope: existing.scope };
    const keyId = newId('key');
    await tx.insertApiKey({
      id: keyId,
      orgId: org.id,
      name: options.name ?? 'default',
      scope: options.scope,
      lookup,
      hash,
      createdAt: now,
    });
    return { key, keyId, orgId: org.id, scope: options.scope };
  });
}
