import diagnostics from 'node:diagnostics_channel';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { coveringWildcard, isWildcard, normalizeHostname } from '../domain/hostname.js';
import type { Route } from '../domain/serving.js';
import type { Logger } from '../logger.js';
import type { Http2Exchange } from './http2-exchange.js';
import { Http2Listener } from './http2-listener.js';
import { LoadingCache } from './loading-cache.js';
import { type EdgeRequest, type ProxyOrigin, parseOrigin, ReverseProxy } from './proxy.js';
import { type EdgeResponse, rawPage, rawRedirect, sendPage, sendRedirect, sendText } from './responses.js';
import {
  type Authority,
  beforeRoute,
  decide,
  type EdgeDecision,
  parseAuthority,
  parseHost,
  type Scheme,
} from './router.js';
import { SniCache } from './sni-cache.js';
import type {
  CertificateSource,
  ChallengeSource,
  EdgeCertificate,
  FallbackSource,
  RouteSource,
  RoutingProofSource,
} from './sources.js';
import { tlsAlpnCallbacks } from './tls-alpn.js';
import { edgeTlsProfile } from './tls-profile.js';

export interface EdgeOptions {
  /** Address both listeners bind (`PORTICO_HOST`). */
  host: string;
  /**
   * `PORTICO_APPS_DOMAIN`: apps' default hostnames are `{slug}.{appsDomain}`; no App may set a
   * cookie for it or above it (`set-cookie.ts`).
   */
  appsDomain: string;
  /** 0 picks a free port; the bound one is in `Edge.httpPort`. */
  httpPort: number;
  httpsPort: number;
  /**
   * The HTTPS port clients reach, used in redirects (omitted from a Location when 443). Default:
   * the bound `httpsPort`; set it to 443 when a load balancer or container maps 443 to another port.
   */
  publicHttpsPort?: number;
  routes: RouteSource;
  certificates: CertificateSource;
  challenges: ChallengeSource;
  /** Answers routing proofs (domain/routing-proof.ts); without it the proof path is answered 404. */
  routingProofs?: RoutingProofSource;
  /**
   * What routes and certificates are answered from when `routes` or `certificates` throw (the
   * store down): the node's snapshot. Its answers are kept `negativeCacheTtlMs` only, so once the
   * store is back every name is read from it again within that time.
   */
  fallback?: FallbackSource;
  /**
   * With a `fallback`: how long a route or certificate read from the store may take before the
   * fallback answers instead, in ms. A database that stops answering without refusing (a silent
   * network partition) would otherwise hold handshakes until TCP gives up. Default 3,000.
   */
  storeTimeoutMs?: number;
  /** `PORTICO_ALLOW_PRIVATE_ORIGINS`: allow origins on loopback and private networks. */
  allowPrivateOrigins: boolean;
  logger: Logger;
  /**
   * Memory the cached certificates (their TLS contexts) may take, in bytes, each counted as
   * sni-cache.ts's `certificateCacheBytes` says. Default DEFAULT_CERT_CACHE_MB MiB.
   */
  certCacheBytes?: number;
  /** Told each time a certificate's TLS context is built (a name's first handshake, a renewal, or after an eviction). */
  onTlsContextBuilt?: () => void;
  /** Routes held in memory at most. Default 10,000. */
  routeCacheSize?: number;
  /**
   * How long a loaded route or certificate is used before it is read again, in ms (in the
   * background, for a name still in use in its last tenth). Default 60,000.
   */
  cacheTtlMs?: number;
  /** How long "not served" is remembered for a name, in ms. Default 5,000. */
  negativeCacheTtlMs?: number;
  /** Longest wait to connect to an origin (DNS, TCP, TLS), in ms. Default 10,000. */
  connectTimeoutMs?: number;
  /** Longest silence from an origin (response head, between body chunks), in ms. Default 60,000. */
  idleTimeoutMs?: number;
  /** Largest request head from a client and response head from an origin, in bytes. Default 16 KiB. */
  maxHeaderSize?: number;
  /** How long `close()` lets requests in flight finish before cutting them, in ms. Default 10,000. */
  closeTimeoutMs?: number;
  /** Told of every answered request (status, seconds), for metrics. */
  onResponse?: (status: number, seconds: number) => void;
}

export interface Edge {
  readonly httpPort: number;
  readonly httpsPort: number;
  /**
   * Forgets what the edge cached for one hostname (route, certificate, or their absence): the next
   * handshake and request read the sources. Call it on every change that affects the name: domain
   * activated, removed, moved or made primary, certificate renewed, the App's `origin_url` changed.
   */
  invalidate(hostname: string): void;
  /** Forgets everything cached. */
  invalidateAll(): void;
  /**
   * Makes everything cached stale, as after missing change notifications (a LISTEN reconnected):
   * each name is read again on its next use, and what it had is still served if that read fails
   * (the database may be reconnecting still). Nothing served is dropped.
   */
  expireAll(): void;
  /**
   * Stops accepting connections, lets requests in flight finish for up to `closeTimeoutMs`, then
   * cuts what is left (WebSocket tunnels included) and closes origin connections.
   */
  close(): Promise<void>;
}

/** Node publishes this when a server response has been written in full (`node:diagnostics_channel`). */
const RESPONSE_FINISHED = 'http.server.response.finish';
interface ResponseFinished {
  server: http.Server;
  socket: Duplex;
}

/** A route with its origin parsed once, at load. */
interface CachedRoute {
  readonly route: Route;
  /** `undefined` when the App has no `origin_url` or it is not http(s): answered with 502. */
  readonly origin: ProxyOrigin | undefined;
  /** Read from the fallback (the snapshot) because the store failed: kept briefly, and its certificate is read there too. */
  readonly fromFallback: boolean;
}

/** A route lookup that failed with nothing cached to fall back on: 503, try again. */
type Outcome = EdgeDecision | { readonly action: 'unavailable' };
const UNAVAILABLE: Outcome = { action: 'unavailable' };

/**
 * How an outcome is written: to a response (HTTP/1.1 or HTTP/2), or raw to a socket that asked for
 * an upgrade (HTTP/1.1 only). `authority` (the routed name and the Host's port) comes with every
 * outcome that has a route.
 */
type Reply<R extends EdgeRequest, C> = (
  req: R,
  channel: C,
  outcome: Outcome,
  cached: CachedRoute | undefined,
  authority?: Authority,
) => void;

interface UpgradeChannel {
  readonly socket: Duplex;
  readonly head: Buffer;
}

/**
 * Starts the edge: an HTTPS listener (HTTP/2 and HTTP/1.1, by ALPN: `http2-listener.ts`) that picks
 * the certificate by SNI (or answers an ACME TLS-ALPN-01 challenge) and proxies each Host (or
 * HTTP/2 `:authority`) to its App's origin, and an HTTP listener that
 * answers ACME HTTP-01 challenges and redirects the rest to HTTPS. What each request gets is
 * `router.ts`; how it is proxied is `proxy.ts`.
 *
 * The request path does no I/O besides a route lookup, and that only on a cache miss: routes and
 * certificates sit in bounded LRU caches with a TTL, filled on demand, one load per name however
 * many requests wait for it (`loading-cache.ts`). Changes reach the caches through `invalidate`.
 */
export async function startEdge(options: EdgeOptions): Promise<Edge> {
  const edge = new EdgeServer(options);
  await edge.listen();
  return edge;
}

class EdgeServer implements Edge {
  private readonly logger: Logger;
  private readonly challenges: ChallengeSource;
  private readonly routes: LoadingCache<CachedRoute>;
  private readonly sni: SniCache;
  /** Whether an HTTPS socket's handshake answered a TLS-ALPN-01 challenge (tls-alpn.ts). */
  private readonly isChallenge: (socket: unknown) => boolean;
  private readonly proxy: ReverseProxy;
  private readonly httpServer: http.Server;
  private readonly httpsServer: https.Server;
  /** The HTTPS listener's h2 connections. */
  private readonly http2: Http2Listener;
  /** Upgraded sockets: a server's close waits for them, so `close()` ends them at its deadline. */
  private readonly tunnels = new Set<Duplex>();
  private readonly closeTimeoutMs: number;
  /** Known once the HTTPS listener is bound (the configured port may be 0). */
  private publicHttpsPort = 443;
  private closing: Promise<void> | undefined;
  httpPort = 0;
  httpsPort = 0;

  constructor(private readonly options: EdgeOptions) {
    const logger = options.logger;
    this.logger = logger;
    this.challenges = options.challenges;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 10_000;
    const ttlMs = options.cacheTtlMs ?? 60_000;
    const negativeTtlMs = options.negativeCacheTtlMs ?? 5_000;
    const routeSource = options.routes;
    const fallback = options.fallback;
    const storeTimeoutMs = options.storeTimeoutMs ?? 3_000;
    /** A read of the store, bounded by `storeTimeoutMs` when there is a fallback to answer instead. */
    const bounded = <T>(read: Promise<T>): Promise<T> =>
      fallback ? withTimeout(read, storeTimeoutMs) : read;

    this.routes = new LoadingCache<CachedRoute>({
      load: async (hostname) => {
        let route: Route | undefined;
        let fromFallback = false;
        try {
          route = await bounded(routeSource.route(hostname));
          fallback?.storeAnswered();
        } catch (error) {
          if (!fallback) throw error;
          // The store's error is the one to report when the snapshot cannot answer either.
          route = answerOr(() => fallback.route(hostname), error);
          fromFallback = true;
        }
        if (route === undefined) return undefined;
        const origin = route.originUrl === null ? undefined : parseOrigin(route.originUrl);
        if (route.originUrl !== null && origin === undefined) {
          logger.warn(
            { hostname, appId: route.appId },
            'edge: origin_url is not an http(s) URL; answering 502',
          );
        }
        return { route, origin, fromFallback };
      },
      maxEntries: options.routeCacheSize ?? 10_000,
      ttlMs,
      negativeTtlMs,
      // From the snapshot: read from the store again within seconds, so a name removed or moved
      // while the store was down stops being served soon after it is back.
      maxAgeOf: (cached) => (cached.fromFallback ? negativeTtlMs : ttlMs),
      // A name in steady use is read again in the last tenth of its life, while requests go on.
      refreshAheadMs: ttlMs / 10,
      onLoadError: (hostname, err) => logger.error({ hostname, err }, 'edge: route lookup failed'),
    });
    const certificates = options.certificates;
    this.sni = new SniCache({
      // A certificate only for a name that has a route, looked up through the route cache: the
      // request that follows a name's first handshake then finds its route already loaded.
      certificates: {
        // A name served by a wildcard claim presents the wildcard's certificate.
        certificate: async (hostname) => {
          const cached = await this.routes.get(hostname);
          if (!cached) return undefined;
          const name = cached.route.wildcard ?? hostname;
          // A route from the snapshot: the store just failed, so its certificate comes from there too.
          if (cached.fromFallback && fallback) return fallbackCertificate(fallback, name, negativeTtlMs);
          try {
            return await bounded(certificates.certificate(name));
          } catch (error) {
            if (!fallback) throw error;
            return answerOr(() => fallbackCertificate(fallback, name, negativeTtlMs), error);
          }
        },
      },
      maxBytes: options.certCacheBytes,
      onContextBuilt: options.onTlsContextBuilt,
      ttlMs,
      negativeTtlMs,
      onLoadError: (hostname, err) => logger.error({ hostname, err }, 'edge: certificate lookup failed'),
    });

    const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.proxy = new ReverseProxy({
      allowPrivateOrigins: options.allowPrivateOrigins,
      appsDomain: normalizeHostname(options.appsDomain),
      connectTimeoutMs,
      idleTimeoutMs,
      maxHeaderSize: options.maxHeaderSize,
      logger,
    });

    const serverOptions: http.ServerOptions = {
      maxHeaderSize: options.maxHeaderSize,
      // Node's default (300 s for a whole request) would cut a large upload on a slow link; a
      // stalled client is caught by the idle timeout below instead, a slow head by headersTimeout.
      requestTimeout: 0,
      // TCP keep-alive probes find dead peers, above all on WebSocket tunnels, which have no timeout.
      keepAlive: true,
      keepAliveInitialDelay: 60_000,
    };
    this.httpServer = http.createServer(serverOptions, this.onHttpRequest);
    // SNI picks the certificate; a handshake offering ALPN `acme-tls/1` gets the TLS-ALPN-01
    // challenge certificate instead, if the name has a challenge pending (tls-alpn.ts).
    const { SNICallback, ALPNCallback, isChallenge } = tlsAlpnCallbacks({
      challenges: options.challenges,
      certificates: this.sni.callback,
      onLoadError: (hostname, err) =>
        logger.error({ hostname, err }, 'edge: TLS-ALPN-01 challenge lookup failed'),
    });
    this.isChallenge = isChallenge;
    this.httpsServer = https.createServer(
      // Versions, suites and groups: Mozilla's "intermediate" profile (tls-profile.ts).
      { ...serverOptions, ...edgeTlsProfile().serverOptions, SNICallback, ALPNCallback },
      this.onHttpsRequest,
    );
    // A client socket may sit silent while the edge waits for the origin (connect, then response
    // head): only a silence longer than the edge's own waits is the client's fault.
    const clientIdleTimeoutMs = connectTimeoutMs + idleTimeoutMs + 1_000;
    this.http2 = new Http2Listener(this.httpsServer, {
      maxHeaderListSize: options.maxHeaderSize ?? http.maxHeaderSize,
      idleTimeoutMs: clientIdleTimeoutMs,
      onRequest: this.onHttp2Request,
      logger,
    });
    for (const [server, scheme] of [
      [this.httpServer, 'http'],
      [this.httpsServer, 'https'],
    ] as const) {
      server.timeout = clientIdleTimeoutMs;
      server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        // Node hands an upgrade socket over with no 'error' listener: a client reset would
        // otherwise be an uncaught exception.
        socket.on('error', this.onUpgradeSocketError);
        this.tunnels.add(socket);
        socket.once('close', () => this.tunnels.delete(socket));
        this.handle(scheme, req, { socket, head }, this.replyUpgrade);
      });
    }
    // Scanners and clients asking for unknown names fail here all day: not worth more than debug.
    this.httpsServer.on('tlsClientError', (err: Error) =>
      logger.debug({ err }, 'edge: TLS handshake failed'),
    );
  }

  async listen(): Promise<void> {
    try {
      this.httpPort = await listen(this.httpServer, this.options.host, this.options.httpPort);
      this.httpsPort = await listen(this.httpsServer, this.options.host, this.options.httpsPort);
    } catch (error) {
      // One port taken: release the other, so the caller can retry or exit cleanly.
      this.httpServer.close();
      this.httpsServer.close();
      await this.proxy.destroy();
      throw error;
    }
    this.publicHttpsPort = this.options.publicHttpsPort ?? this.httpsPort;
    this.logger.info(
      {
        host: this.options.host,
        httpPort: this.httpPort,
        httpsPort: this.httpsPort,
        tlsGroups: edgeTlsProfile().groups,
      },
      'edge: listening',
    );
  }

  invalidate(hostname: string): void {
    const name = normalizeHostname(hostname);
    this.routes.invalidate(name);
    this.sni.invalidate(name);
    // A wildcard claim's change (served, removed, moved, renewed) is announced by its own name,
    // `*.acme.com`, and changes what every name one label under it serves: those are cached by
    // their own names, served by the wildcard or remembered as not served.
    if (isWildcard(name)) {
      const covered = (key: string) => coveringWildcard(key) === name;
      this.routes.invalidateMatching(covered);
      this.sni.invalidateMatching(covered);
    }
  }

  invalidateAll(): void {
    this.routes.clear();
    this.sni.clear();
  }

  expireAll(): void {
    this.routes.expireAll();
    this.sni.expireAll();
  }

  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    const servers: http.Server[] = [this.httpServer, this.httpsServer];
    // A connection busy when close() starts would otherwise stay open for the keep-alive timeout
    // after its last response: end each one as its response finishes. Subscribed only while
    // closing, so serving pays nothing for it.
    const endAfterResponse = (message: unknown): void => {
      const { server, socket } = message as ResponseFinished;
      if (servers.includes(server)) socket.end();
    };
    diagnostics.subscribe(RESPONSE_FINISHED, endAfterResponse);
    // close() stops accepting and ends idle keep-alive connections; it resolves once the rest ended
    // (HTTP/2 sessions included: GOAWAY tells them to finish their streams and go).
    const drained = Promise.all(
      servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
    );
    this.http2.close();
    const deadline = setTimeout(() => {
      for (const server of servers) server.closeAllConnections();
      this.http2.destroy();
      for (const socket of this.tunnels) socket.destroy();
    }, this.closeTimeoutMs);
    try {
      await drained;
    } finally {
      clearTimeout(deadline);
      diagnostics.unsubscribe(RESPONSE_FINISHED, endAfterResponse);
    }
    // Nothing is in flight any more: origin connections can go at once.
    await this.proxy.destroy();
    this.logger.info('edge: closed');
  }

  private readonly onUpgradeSocketError = (err: Error): void => {
    this.logger.debug({ err }, 'edge: upgrade connection failed');
  };

  private readonly onHttpRequest = (req: IncomingMessage, res: ServerResponse): void => {
    this.observe(res);
    this.handle('http', req, res, this.replyRequest);
  };

  private readonly onHttpsRequest = (req: IncomingMessage, res: ServerResponse): void => {
    this.observe(res);
    this.handle('https', req, res, this.replyRequest);
  };

  /** An HTTP/2 stream is both the request and its response. */
  private readonly onHttp2Request = (exchange: Http2Exchange): void => {
    this.observe(exchange);
    this.handle('https', exchange, exchange, this.replyRequest);
  };

  /** Reports the response's status and duration to `options.onResponse` (metrics), if set. */
  private observe(res: EdgeResponse): void {
    const onResponse = this.options.onResponse;
    if (!onResponse) return;
    const started = performance.now();
    // 'finish': the response was written in full. A request whose client left first is not counted.
    res.once('finish', () => onResponse(res.statusCode, (performance.now() - started) / 1000));
  }

  /** Decides what a request gets (`router.ts`), looking its route up only when needed. */
  private handle<R extends EdgeRequest, C>(scheme: Scheme, req: R, channel: C, reply: Reply<R, C>): void {
    const http2 = req.httpVersionMajor === 2;
    if (scheme === 'https' && !http2 && this.isChallenge(req.socket)) {
      // A challenge connection carries no HTTP: the CA closes it once the handshake is done (RFC
      // 8737 section 3). Whatever arrives on one anyway is never routed, let alone proxied. (It
      // never speaks HTTP/2 either: ALPN agreed `acme-tls/1`.)
      req.socket.destroy();
      return;
    }
    // An HTTP/2 CONNECT has no `:path`: refused as a target that is not a path.
    const target = req.url ?? '';
    const host = http2 ? parseAuthority(req.rawHeaders) : parseHost(req.rawHeaders);
    const servername =
      scheme === 'https'
        ? servernameOf(req.socket as TLSSocket, typeof host === 'string' ? undefined : host.hostname)
        : undefined;
    const step = beforeRoute(scheme, host, servername, target);
    if (typeof step !== 'string') {
      reply(req, channel, step, undefined);
      return;
    }
    // What the origin is told the host was: the routed name, never the client's bytes.
    const authority: Authority = { hostname: step, port: typeof host === 'string' ? undefined : host.port };
    const cached = this.routes.get(step);
    if (cached instanceof Promise) {
      cached.then(
        (loaded) =>
          reply(
            req,
            channel,
            decide(scheme, step, target, loaded?.route, this.publicHttpsPort),
            loaded,
            authority,
          ),
        // Already logged once per failed load (onLoadError), not once per waiting request.
        () => reply(req, channel, UNAVAILABLE, undefined),
      );
    } else {
      reply(
        req,
        channel,
        decide(scheme, step, target, cached?.route, this.publicHttpsPort),
        cached,
        authority,
      );
    }
  }

  private readonly replyRequest: Reply<EdgeRequest, EdgeResponse> = (
    req,
    res,
    outcome,
    cached,
    authority,
  ) => {
    switch (outcome.action) {
      case 'proxy':
        if (cached?.origin === undefined || authority === undefined) sendPage(res, 502);
        else this.proxy.forward(req, res, cached.origin, req.url ?? '/', authority);
        return;
      case 'redirect':
        sendRedirect(res, outcome.location);
        return;
      case 'challenge':
        this.answerText(res, this.challenges.keyAuthorization(outcome.token), 'challenge');
        return;
      case 'routing-proof': {
        const proofs = this.options.routingProofs;
        const proof = proofs ? proofs.proof(outcome.hostname, outcome.nonce) : Promise.resolve(undefined);
        this.answerText(res, proof, 'routing proof');
        return;
      }
      case 'reject':
        sendPage(res, outcome.status);
        return;
      case 'unavailable':
        sendPage(res, 503);
        return;
    }
  };

  /** A looked-up answer as text/plain: 404 when there is none, 503 (logged) when the lookup failed. */
  private answerText(res: EdgeResponse, lookup: Promise<string | undefined>, what: string): void {
    lookup.then(
      (text) => {
        if (text === undefined) sendPage(res, 404);
        else sendText(res, text);
      },
      (err: unknown) => {
        this.logger.error({ err }, `edge: ${what} lookup failed`);
        sendPage(res, 503);
      },
    );
  }

  /** Upgrade requests are only ever proxied; anything else is answered raw and the socket closed. */
  private readonly replyUpgrade: Reply<IncomingMessage, UpgradeChannel> = (
    req,
    { socket, head },
    outcome,
    cached,
    authority,
  ) => {
    switch (outcome.action) {
      case 'proxy':
        if (cached?.origin === undefined || authority === undefined) socket.end(rawPage(502));
        else this.proxy.forwardUpgrade(req, socket, head, cached.origin, req.url ?? '/', authority);
        return;
      case 'redirect':
        socket.end(rawRedirect(outcome.location));
        return;
      case 'challenge':
      case 'routing-proof':
        // Neither a CA nor Portico's worker asks for an upgrade: nothing to answer with.
        socket.end(rawPage(404));
        return;
      case 'reject':
        socket.end(rawPage(outcome.status));
        return;
      case 'unavailable':
        socket.end(rawPage(503));
        return;
    }
  };
}

/** `read`, or a rejection once `ms` have passed without its answer (the read itself goes on, unobserved). */
function withTimeout<T>(read: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the store did not answer within ${ms} ms`)), ms);
    read.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** The fallback's answer, or `error` (the store's) thrown when it cannot answer either. */
function answerOr<T>(answer: () => T, error: unknown): T {
  try {
    return answer();
  } catch {
    throw error;
  }
}

/** A certificate from the fallback, kept `maxAgeMs` at most (read from the store again after). */
function fallbackCertificate(
  fallback: FallbackSource,
  hostname: string,
  maxAgeMs: number,
): EdgeCertificate | undefined {
  const found = fallback.certificate(hostname);
  return found && { ...found, maxAgeMs };
}

/**
 * The connection's SNI name, normalized. Most requests carry a Host equal to it already: that case
 * skips normalizing it again.
 */
function servernameOf(socket: TLSSocket, hostname: string | undefined): string | undefined {
  const raw = socket.servername;
  if (typeof raw !== 'string') return undefined;
  return raw === hostname ? raw : normalizeHostname(raw);
}

function listen(server: http.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
