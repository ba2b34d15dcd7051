import { isPrivateAddress } from '../net/private-address.js';
import { errors } from './errors.js';

/**
 * Checks a URL a tenant chose for Portico to connect to (an App's origin, a webhook) and returns it
 * normalized (as WHATWG URL serializes it). Unless the operator allows private addresses
 * (`PORTICO_ALLOW_PRIVATE_ORIGINS=1`), a literal private address (`isPrivateAddress`) or a
 * `localhost` name is refused here, so a tenant cannot make Portico fetch the platform's own
 * services (SSRF). Other names are judged by the address they resolve to, when connecting (the
 * guarded connector), which also defeats DNS rebinding.
 */
export function parseTenantUrl(
  input: string,
  allowPrivate: boolean,
  fail: { invalid: (reason: string) => Error; private: () => Error },
): string {
  let url: URL;
  try {
    url = new URL(input.trim());
  } catch {
    throw fail.invalid('It must be an absolute http(s) URL, such as "https://origin.example.com".');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw fail.invalid('It must use http or https.');
  if (url.username || url.password) throw fail.invalid('It cannot contain credentials.');
  if (url.hash) throw fail.invalid('It cannot contain a #fragment.');
  // `localhost.` is `localhost` to a resolver: the trailing dot must not get a name past this check.
  const host = url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '');
  const isLocalName = host === 'localhost' || host.endsWith('.localhost');
  if (!allowPrivate && (isLocalName || isPrivateAddress(host))) throw fail.private();
  return url.toString();
}

/** An App's `origin_url`, checked as `parseTenantUrl` does. */
export function parseOriginUrl(input: string, allowPrivate: boolean): string {
  return parseTenantUrl(input, allowPrivate, {
    invalid: (reason) => errors.originUrlInvalid(input, `origin_url: ${reason}`),
    private: () => errors.originUrlPrivate(input),
  });
}
