import { createSecureContext, type SecureContext, TLSSocket, type TlsOptions } from 'node:tls';
import type acme from 'acme-client';
import { normalizeHostname } from '../domain/hostname.js';
import { LoadingCache } from './loading-cache.js';
import type { SniCallback } from './sni-cache.js';
import type { ChallengeSource } from './sources.js';

/** The ALPN protocol of TLS-ALPN-01 validation (RFC 8737 section 6.2). */
const ACME_TLS_PROTOCOL = 'acme-tls/1';

/**
 * What the HTTPS listener speaks, in the edge's order of preference: HTTP/2 whenever the client
 * offers it, whatever its own order (a client lists what it can do; the edge knows which costs it
 * less per request), else HTTP/1.1. A client that offers neither (nor `acme-tls/1` for a pending
 * challenge) is refused with a fatal no_application_protocol alert, as Node's own `ALPNProtocols`
 * would, which the callback below replaces. One that offers no ALPN at all speaks HTTP/1.1.
 */
export const H2 = 'h2';

/**
 * acme-client's crypto helpers, loaded on the first TLS-ALPN-01 challenge: the library and what it
 * brings (axios, node-forge) cost an edge process about 40 MB on Node 24, and an edge whose CA
 * validates over HTTP-01 or DNS-01 never needs them.
 */
let acmeCryptoModule: Promise<typeof acme.crypto> | undefined;
function acmeCrypto(): Promise<typeof acme.crypto> {
  acmeCryptoModule ??= import('acme-client').then((module) => module.default.crypto);
  return acmeCryptoModule;
}
export const HTTP_1_1 = 'http/1.1';

export type AlpnCallback = NonNullable<TlsOptions['ALPNCallback']>;

export interface TlsAlpnOptions {
  challenges: Pick<ChallengeSource, 'tlsAlpnKeyAuthorization'>;
  /** The `SNICallback` of every other handshake: the names' real certificates. */
  certificates: SniCallback;
  /**
   * How long a challenge certificate, once built, is reused for the same name and key
   * authorization, in ms. Default 10,000: a CA validating from several vantage points connects a
   * few times within seconds.
   */
  ttlMs?: number;
  /** Called once per failed challenge lookup or certificate build. */
  onLoadError?(hostname: string, error: unknown): void;
}

/**
 * TLS-ALPN-01 (RFC 8737) on the edge's HTTPS listener: `SNICallback` and `ALPNCallback` for
 * `https.createServer`. The CA connects to port 443 of the name with SNI and the single ALPN
 * protocol `acme-tls/1`, and expects a self-signed certificate for the name whose critical
 * acmeIdentifier extension (1.3.6.1.5.5.7.1.31) holds the SHA-256 digest of the key authorization.
 * Every other handshake for the name gets what it got before: the real certificate, or none.
 *
 * Node cannot choose a certificate by ALPN directly: `SNICallback` is not told the client's ALPN
 * list, and `ALPNCallback` must answer synchronously (no store lookup). What works, as checked on
 * Node 20.20 with OpenSSL 3.0 (test/integration/edge/server.test.ts holds it to that):
 * - In TLS 1.3, OpenSSL selects the ALPN protocol while reading the ClientHello, before the
 *   certificate callback in which Node runs `SNICallback`. So `ALPNCallback` marks the handshake
 *   as a challenge, and `SNICallback` answers a marked handshake with the challenge certificate,
 *   built from the key authorization it reads from the store, and never with the real one. Node
 *   calls both callbacks with the handshake's `TLSSocket` as `this` (what its docs of
 *   `tlsSocket.setKeyCert` rely on); a handshake is recognised by that socket.
 * - In TLS 1.2 the certificate is chosen first, then ALPN. An `acme-tls/1` hello whose certificate
 *   was already chosen is refused with no_application_protocol rather than completed with the real
 *   certificate. CAs validate over TLS 1.3 whenever the server offers it, which Node does by
 *   default (Let's Encrypt's and Pebble's validators are Go clients preferring TLS 1.3).
 * Calling `setKeyCert` from `ALPNCallback` alone would not do: the certificate must be ready
 * synchronously there, and in TLS 1.3 the `SNICallback` that runs next replaces it. Reading the
 * ClientHello before TLS starts would work on both versions, but means buffering and parsing every
 * connection's first bytes in JavaScript and taking over the listener's sockets: more code on
 * every handshake for a CA's few.
 *
 * Nothing is kept but the built certificates, briefly: the key authorization is read from the
 * source on every challenge handshake (a removed answer is never presented again), and the
 * certificates share one ECDSA P-256 key made in memory when first needed.
 */
export function tlsAlpnCallbacks(options: TlsAlpnOptions): {
  SNICallback: SniCallback;
  ALPNCallback: AlpnCallback;
  /**
   * Whether the socket's handshake was a challenge one: it was shown (or would have been shown) a
   * challenge certificate, and must carry no HTTP. Asked of the socket, not of the protocol agreed:
   * after a HelloRetryRequest, Node 20 completes the handshake without the ALPN protocol it chose.
   */
  isChallenge(socket: unknown): boolean;
} {
  const { challenges, certificates, onLoadError } = options;
  /** Handshakes whose `ALPNCallback` chose `acme-tls/1` (TLS 1.3 order). */
  const challengeHandshakes = new WeakSet<TLSSocket>();
  /** Handshakes whose certificate was chosen before ALPN (TLS 1.2 order). */
  const certificateChosen = new WeakSet<TLSSocket>();

  let key: Promise<Buffer> | undefined;
  const challengeKey = (): Promise<Buffer> => {
    key ??= acmeCrypto()
      .then((crypto) => crypto.createPrivateEcdsaKey('P-256'))
      .catch((error: unknown) => {
        key = undefined;
        throw error;
      });
    return key;
  };

  // Keyed by name and key authorization: a new order for the name has a new key authorization, so
  // a cached certificate can only ever be the one for the answer stored now.
  const built = new LoadingCache<SecureContext>({
    load: async (cacheKey) => {
      const separator = cacheKey.indexOf(' ');
      const hostname = cacheKey.slice(0, separator);
      const keyAuthorization = cacheKey.slice(separator + 1);
      // acme-client reads only the identifier of the authorization.
      const authz = { identifier: { type: 'dns', value: hostname } } as acme.Authorization;
      const [privateKey, certificate] = await (await acmeCrypto()).createAlpnCertificate(
        authz,
        keyAuthorization,
        await challengeKey(),
      );
      return createSecureContext({ key: privateKey, cert: certificate });
    },
    maxEntries: 1_000,
    ttlMs: options.ttlMs ?? 10_000,
    negativeTtlMs: 0,
    onLoadError: (cacheKey, error) => onLoadError?.(cacheKey.slice(0, cacheKey.indexOf(' ')), error),
  });

  /** The challenge certificate for `hostname`, or undefined when it has no pending TLS-ALPN-01 challenge. */
  const challengeCertificate = async (hostname: string): Promise<SecureContext | undefined> => {
    let keyAuthorization: string | undefined;
    try {
      keyAuthorization = await challenges.tlsAlpnKeyAuthorization(hostname);
    } catch (error) {
      onLoadError?.(hostname, error);
      throw error;
    }
    return keyAuthorization === undefined ? undefined : built.get(`${hostname} ${keyAuthorization}`);
  };

  // `function`s, not arrows: Node passes the handshake's socket as `this`.
  function ALPNCallback(
    this: unknown,
    { servername, protocols }: { servername: string; protocols: string[] },
  ) {
    if (protocols.includes(H2)) return H2;
    if (protocols.includes(HTTP_1_1)) return HTTP_1_1;
    if (
      protocols.includes(ACME_TLS_PROTOCOL) &&
      typeof servername === 'string' &&
      servername !== '' &&
      this instanceof TLSSocket &&
      !certificateChosen.has(this)
    ) {
      challengeHandshakes.add(this);
      return ACME_TLS_PROTOCOL;
    }
    return undefined;
  }

  function SNICallback(this: unknown, servername: string, callback: Parameters<SniCallback>[1]) {
    const socket = this instanceof TLSSocket ? this : undefined;
    if (socket === undefined || !challengeHandshakes.has(socket)) {
      if (socket !== undefined) certificateChosen.add(socket);
      certificates(servername, callback);
      return;
    }
    // A challenge handshake: the challenge certificate, or none (the handshake fails), never the
    // name's real certificate.
    challengeCertificate(normalizeHostname(servername)).then(
      (context) => callback(null, context),
      (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
    );
  }

  const isChallenge = (socket: unknown) => socket instanceof TLSSocket && challengeHandshakes.has(socket);

  return { SNICallback, ALPNCallback, isChallenge };
}
