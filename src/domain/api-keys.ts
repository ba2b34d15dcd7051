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
  const { lookup, hash } = digestApiKey(presented);
  const expected = Buffer.from(hash, 'hex');
  for (const candidate of await store.findApiKeysByLookup(lookup)) {
    if (timingSafeEqual(Buffer.from(candidate.hash, 'hex'), expected)) {
      return { orgId: candidate.orgId, keyId: candidate.id, scope: candidate.scope };
    }
  }
  return undefined;
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
