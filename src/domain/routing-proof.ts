import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { Agent, request } from 'undici';
import type { Resolver } from '../dns/resolver.js';
import { guardedConnector } from '../net/guarded-connector.js';

/**
 * Routing proven through the customer's own proxy or CDN (docs/security.md, "Routing"). A domain
 * behind Cloudflare's orange cloud, Fastly or a WAF has A records in the CDN's ranges, so DNS cannot
 * show that its traffic reaches the platform. An HTTP request can: the worker asks the name for
 * `/.well-known/portico-routing/{nonce}` at the addresses DNS gives, and only the platform's edge
 * can answer with the claim's proof, an HMAC of the claim, the name and the fresh nonce under a key
 * every Portico node derives from the secret box and no one else has. A proxy that does not reach
 * the edge cannot make one up, and an answer fetched once is worth nothing for the next nonce.
 *
 * What the proof decides is only reported (`routing.via: "proxy"`) and gates the first certificate
 * of a claim that is not served yet; it never keeps a claim alive. That rests on the ownership
 * record alone, so a proxy cannot hold a name a customer has left.
 */

/** Where the edge answers proofs, on HTTP and HTTPS, for any name that has a live claim. */
export const ROUTING_PROOF_PATH = '/.well-known/portico-routing/';

/** The secret box's purpose the proof key is derived for (SecretBox.deriveKey). */
export const ROUTING_PROOF_KEY_PURPOSE = 'routing-proof';

/** Nonces are base64url, long enough to be unguessable, short enough to bound what the edge hashes. */
const NONCE = /^[A-Za-z0-9_-]{22,64}$/;

export const isRoutingProofNonce = (nonce: string): boolean => NONCE.test(nonce);

/** The proof of routing for one claim on one name: what the edge answers, what the worker expects. */
export function routingProof(key: Buffer, claimId: string, hostname: string, nonce: string): string {
  return createHmac('sha256', key).update(`${claimId}\n${hostname}\n${nonce}`).digest('base64url');
}

/** The outcome of asking the customer's proxy: proven, or why not, in a sentence for the customer. */
export type ProxyProof = { ok: true; address: string } | { ok: false; reason: string };

/** The customer's proxy listens where browsers connect: plain HTTP first, HTTPS after a redirect. */
const HTTP_PORT = 80;
const HTTPS_PORT = 443;
/** A proxy set to "always use HTTPS" answers the plain request with one of these. */
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** A proof is a short answer from a server that is up: no reason to wait long for it. */
const PROOF_TIMEOUT_MS = 5_000;
/** Addresses tried, at most: a name with a dozen A records is as proven by its first few. */
const MAX_ADDRESSES = 4;
/** The proof is 43 characters; a longer answer is someone else's page. */
const MAX_ANSWER_BYTES = 256;

export class RoutingProver {
  private readonly agent: Agent;
  /**
   * For the HTTPS leg after a redirect. The proxy's certificate is not checked, as ACME's HTTP-01
   * validation does not check it on a redirect to HTTPS either (RFC 8555 8.3; Let's Encrypt): the
   * answer is an HMAC only the platform can make, so who terminated TLS changes nothing, and a
   * domain on its way to its first certificate may present none valid yet.
   */
  private readonly httpsAgent: Agent;

  constructor(
    private readonly resolver: Resolver,
    private readonly key: Buffer,
    options: { allowPrivateAddresses: boolean },
  ) {
    // The addresses are the customer's DNS answers: the SSRF guard applies as to any tenant's choice.
    this.agent = new Agent({
      connect: guardedConnector({ timeoutMs: PROOF_TIMEOUT_MS, allowPrivate: options.allowPrivateAddresses }),
      headersTimeout: PROOF_TIMEOUT_MS,
      bodyTimeout: PROOF_TIMEOUT_MS,
      // One request per check: nothing to keep open.
      pipelining: 0,
    });
    this.httpsAgent = new Agent({
      connect: guardedConnector({
        timeoutMs: PROOF_TIMEOUT_MS,
        allowPrivate: options.allowPrivateAddresses,
        rejectUnauthorized: false,
      }),
      headersTimeout: PROOF_TIMEOUT_MS,
      bodyTimeout: PROOF_TIMEOUT_MS,
      pipelining: 0,
    });
  }

  /**
   * Asks `claim.name`, over HTTP at the addresses DNS gives for it (following its CNAMEs), for the
   * proof of a fresh nonce. Proven when one address answers it. One redirect is followed, to the
   * same path on `https://{the name}` at the same address (a proxy set to "always use HTTPS", as
   * Cloudflare offers): what ACME's HTTP-01 validation follows too. Any other redirect is a failure.
   */
  async prove(claim: { id: string; name: string }, signal?: AbortSignal): Promise<ProxyProof> {
    const [a, aaaa] = await Promise.all([
      this.resolver.lookup(claim.name, 'A', { signal }),
      this.resolver.lookup(claim.name, 'AAAA', { signal }),
    ]);
    const addresses = [...a.values, ...aaaa.values].slice(0, MAX_ADDRESSES);
    if (addresses.length === 0) {
      return { ok: false, reason: `${claim.name} has no A or AAAA record to send a request to` };
    }
    const nonce = randomBytes(24).toString('base64url');
    const expected = Buffer.from(routingProof(this.key, claim.id, claim.name, nonce));
    const failures: string[] = [];
    for (const address of addresses) {
      const failure = await this.ask(address, claim.name, nonce, expected, signal);
      if (failure === undefined) return { ok: true, address };
      failures.push(`${address}: ${failure}`);
    }
    return {
      ok: false,
      reason: `an HTTP request for http://${claim.name}${ROUTING_PROOF_PATH}… did not reach the platform's edge (${failures.join('; ')})`,
    };
  }

  /** One address: undefined when it answered the proof, else what it did instead. */
  private async ask(
    address: string,
    hostname: string,
    nonce: string,
    expected: Buffer,
    signal: AbortSignal | undefined,
  ): Promise<string | undefined> {
    const host = isIPv6(address) ? `[${address}]` : address;
    const path = `${ROUTING_PROOF_PATH}${nonce}`;
    const get = (scheme: 'http' | 'https') =>
      request(`${scheme}://${host}:${scheme === 'http' ? HTTP_PORT : HTTPS_PORT}${path}`, {
        dispatcher: scheme === 'http' ? this.agent : this.httpsAgent,
        // undici takes the TLS server name (SNI) from the Host header.
        headers: { host: hostname, 'user-agent': 'Portico-Routing-Check/1' },
        signal: signal
          ? AbortSignal.any([signal, AbortSignal.timeout(PROOF_TIMEOUT_MS)])
          : AbortSignal.timeout(PROOF_TIMEOUT_MS),
      });
    try {
      let response = await get('http');
      let body = await readAtMost(response.body, MAX_ANSWER_BYTES);
      if (REDIRECTS.has(response.statusCode)) {
        const location = response.headers.location;
        if (!isHttpsUpgrade(typeof location === 'string' ? location : undefined, hostname, path)) {
          return `answered ${response.statusCode} to ${String(location)}, not to the same path over HTTPS`;
        }
        response = await get('https');
        body = await readAtMost(response.body, MAX_ANSWER_BYTES);
        if (response.statusCode !== 200) return `answered ${response.statusCode} over HTTPS`;
      }
      if (response.statusCode !== 200) return `answered ${response.statusCode}`;
      const answer = Buffer.from(body.trim());
      return answer.length === expected.length && timingSafeEqual(answer, expected)
        ? undefined
        : 'answered, but not with the edge’s proof';
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      return error instanceof Error ? error.message : String(error);
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.agent.close(), this.httpsAgent.close()]);
  }
}

/** Whether a redirect's `location` is the request's own path on `https://{hostname}` (port 443). */
function isHttpsUpgrade(location: string | undefined, hostname: string, path: string): boolean {
  if (location === undefined || !URL.canParse(location)) return false;
  const target = new URL(location);
  return (
    target.protocol === 'https:' &&
    target.port === '' &&
    target.hostname.toLowerCase() === hostname.toLowerCase() &&
    target.pathname === path
  );
}

/** The start of a body, at most `limit` bytes; the rest is discarded. */
async function readAtMost(body: AsyncIterable<Buffer> & { destroy(): void }, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}
