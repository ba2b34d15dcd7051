import type { FastifyRequest } from 'fastify';
import { CachingAuthenticator, type Principal } from '../domain/api-keys.js';
import { errors } from '../domain/errors.js';
import type { Store } from '../store/store.js';
import type { RateLimiter } from './rate-limit.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling: set by the auth hook on every `/v1` request before anything else runs. */
    principal: Principal;
  }
}

const BEARER = /^Bearer[ \t]+([\x21-\x7e]+)[ \t]*$/i;
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * The `onRequest` hook of the `/v1` API: runs before the body is read, so an unauthenticated
 * client learns nothing (not even whether its body was valid). Reads need a key; anything else
 * needs a key with `write` scope.
 */
export function requireApiKey(store: Store, limiter: RateLimiter) {
  const keys = new CachingAuthenticator(store);
  return async (request: FastifyRequest): Promise<void> => {
    const header = request.headers.authorization;
    if (!header) throw errors.unauthenticated();
    const match = BEARER.exec(header);
    if (!match?.[1]) throw errors.unauthenticated('The Authorization header must be "Bearer <API key>".');
    const principal = await keys.authenticate(match[1]);
    if (!principal) throw errors.invalidApiKey();
    const wait = limiter.take(principal.keyId);
    if (wait > 0) throw errors.rateLimited(wait);
    if (principal.scope !== 'write' && !READ_METHODS.has(request.method)) throw errors.readOnlyKey();
    request.principal = principal;
  };
}
