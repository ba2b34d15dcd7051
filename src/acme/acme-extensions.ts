import type acme from 'acme-client';
import { ariCertId, parseRenewalInfo, type RenewalInfo } from './ari.js';
import { parseRetryAfter } from './ca-transport.js';

/*
 * What acme-client 5.4 (the newest) lacks, as a thin layer over its own request machinery:
 * ACME Renewal Information (RFC 9773: the `renewalInfo` resource, `replaces` on a new order) and
 * profiles (draft-aaron-acme-profiles: `meta.profiles`, `profile` on a new order). Nothing here
 * signs anything: a new order's extra fields ride in the payload acme-client signs
 * (`client.createOrder(data)` sends `data` as it is), and the renewalInfo request is an
 * unauthenticated GET. The directory and the GET go through acme-client's HTTP client
 * (`client.http`), so they share its directory cache, and the transport's agent, timeout and error
 * explanations (ca-transport.ts). Why not a fork: docs/architecture.md, "The ACME library".
 */

/** What Portico reads of acme-client's HTTP client: public in its JavaScript, untyped in its types. */
interface AcmeHttp {
  getDirectory(): Promise<Record<string, unknown>>;
  request(
    url: string,
    method: 'get',
  ): Promise<{ status: number; data: unknown; headers: Record<string, unknown> }>;
}

function httpOf(client: acme.Client): AcmeHttp {
  const http = (client as unknown as { http?: AcmeHttp }).http;
  if (typeof http?.getDirectory !== 'function' || typeof http.request !== 'function') {
    // A later acme-client that moved it: fail loudly (the tests against Pebble catch it first).
    throw new Error(
      'acme-client no longer exposes its HTTP client (client.http): see src/acme/acme-extensions.ts',
    );
  }
  return http;
}

/** The directory, as acme-client read it (and caches it). */
export function readDirectory(client: acme.Client): Promise<Record<string, unknown>> {
  return httpOf(client).getDirectory();
}

/** The profiles a directory offers (`meta.profiles`: name to description), or undefined when it lists none. */
export function offeredProfiles(directory: unknown): string[] | undefined {
  const meta = (directory as { meta?: { profiles?: unknown } } | undefined)?.meta;
  const profiles = meta?.profiles;
  return typeof profiles === 'object' && profiles !== null ? Object.keys(profiles) : undefined;
}

/** The payload of a new order (RFC 8555 section 7.4), with a profile and the certificate it replaces if any. */
export function newOrderPayload(
  names: readonly string[],
  extra: { profile?: string; replaces?: string },
): Parameters<acme.Client['createOrder']>[0] {
  const payload: Parameters<acme.Client['createOrder']>[0] & { profile?: string; replaces?: string } = {
    identifiers: names.map((value) => ({ type: 'dns', value })),
  };
  if (extra.profile !== undefined) payload.profile = extra.profile;
  if (extra.replaces !== undefined) payload.replaces = extra.replaces;
  return payload;
}

/**
 * Asks the CA for a certificate's renewal window (RFC 9773 section 4.2): GET `{renewalInfo}/{certID}`.
 * Undefined when the directory has no `renewalInfo`, or the CA knows no window for this certificate
 * (404: issued elsewhere, or before the CA kept ARI). Any other answer than 200 throws, for the
 * transport to explain from the status (429, 5xx) and Retry-After.
 */
export async function fetchRenewalInfo(
  client: acme.Client,
  certificatePem: string,
): Promise<RenewalInfo | undefined> {
  const http = httpOf(client);
  const base = (await http.getDirectory()).renewalInfo;
  if (typeof base !== 'string') return undefined;
  const certId = ariCertId(certificatePem);
  const response = await http.request(`${base.replace(/\/+$/, '')}/${certId}`, 'get');
  if (response.status === 404) return undefined;
  if (response.status !== 200) throw new Error(`renewalInfo answered HTTP ${response.status}`);
  const retryAfter = response.headers['retry-after'];
  return parseRenewalInfo(
    certId,
    response.data,
    parseRetryAfter(typeof retryAfter === 'string' ? retryAfter : undefined),
  );
}
