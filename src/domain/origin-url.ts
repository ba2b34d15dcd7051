import { BlockList, isIP } from 'node:net';
import { errors } from './errors.js';

/**
 * Addresses an App's origin may not use unless the operator allows it
 * (`PORTICO_ALLOW_PRIVATE_ORIGINS=1`): otherwise a tenant could make the edge fetch the platform's
 * own internal services (SSRF). Checked on the URL at creation and again on the resolved address
 * when the edge connects, which defeats DNS rebinding.
 */
const PRIVATE_RANGES = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  PRIVATE_RANGES.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['::ffff:0:0', 96],
  ['64:ff9b::', 96],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  PRIVATE_RANGES.addSubnet(network, prefix, 'ipv6');
}

/** True for loopback, link-local, private, carrier-grade NAT, multicast and unspecified addresses. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  if (family === 6) {
    // An IPv4-mapped IPv6 address is judged by its IPv4 part.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped?.[1]) return PRIVATE_RANGES.check(mapped[1], 'ipv4');
  }
  return PRIVATE_RANGES.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/**
 * Checks a URL a tenant chose for Portico to connect to (an App's origin, a webhook) and returns it
 * normalized (as WHATWG URL serializes it). Hostnames are resolved only at connect time (the
 * guarded connector); here a literal private address or a `localhost` name is refused.
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
  const host = url.hostname.replace(/^\[|\]$/g, '');
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
