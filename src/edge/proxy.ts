import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import type { Logger } from '../logger.js';
import { guardedConnector } from '../net/guarded-connector.js';
import { Http2Exchange } from './http2-exchange.js';
import { type EdgeResponse, type PageStatus, rawPage, rawResponse, sendPage } from './responses.js';
import type { Authority, Scheme } from './router.js';
import { type CookieScope, scopeSetCookies } from './set-cookie.js';

/**
 * The streaming reverse proxy: one request from a client, one to the App's origin, bodies relayed
 * chunk by chunk with backpressure both ways, so a 50 MB upload or download costs a few socket
 * buffers, never its size.
 *
 * Built on undici's dispatcher API, not `node:http`: its connection pools keep origin connections
 * alive per origin and it hands the response to a handler with no stream objects in between, which
 * is the fastest way Node has to relay a response. One `Agent` holds a pool per origin and drops a
 * pool once its connections have closed, so the number of Apps does not pin memory.
 *
 * What the origin sees:
 * - `Host` is the origin's own host (`origin_url`'s host and port), as if the App were called
 *   directly: origins behind their own TLS or virtual hosting (a PaaS, a bucket, a CDN) answer only
 *   to their own name. The name the visitor used is in `X-Forwarded-Host` and `Forwarded: host=`.
 * - Hop-by-hop headers are dropped both ways (RFC 9110 §7.6.1): `Connection` and the headers it
 *   lists, `Keep-Alive`, `Proxy-*`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`; and `Expect`
 *   (Node has already answered `100 Continue` to the client).
 * - The edge is the first hop: nothing before it is trusted, so what a client claims about the
 *   request is dropped and the edge says it instead (docs/security.md, "What the edge forwards").
 *   `X-Forwarded-For` gets the client's address appended (an origin trusts only elements from the
 *   right that proxies it knows added; the last is the edge's). `Forwarded` (RFC 7239) is replaced
 *   by the edge's own element: frameworks read its `host=` and `proto=` from the first element,
 *   which would otherwise be the client's. `X-Forwarded-Host` (the routed name, with the port
 *   only when it is not the scheme's default), `X-Forwarded-Port` and `X-Forwarded-Proto` are set
 *   by the edge; every other `X-Forwarded-*`, `X-Real-IP`, `X-Original-URL` and `X-Rewrite-URL`
 *   from a client is dropped (servers and frameworks take those as the client's address or the
 *   URL asked for).
 * - The path is `origin_url`'s path (without its trailing slash) followed by the request target;
 *   a query in `origin_url` is not used.
 * - HTTPS origins have their certificate verified against the system's CAs, as any client would.
 *
 * What the client sees: the origin's response, hop-by-hop headers dropped, and each `Set-Cookie`
 * kept to the name the request was for (`set-cookie.ts`): one App cannot set cookies for another.
 *
 * HTTP/2 clients (RFC 9113) get the same, each stream an `Http2Exchange` (`http2-exchange.ts`) that
 * this proxy takes as it takes an HTTP/1.1 request and response: the origin is still spoken to
 * over HTTP/1.1. Their pseudo-headers are not forwarded (the origin gets a Host of its own,
 * as above; `:authority` is what the edge routed on), their `cookie` fields arrive joined with `; `
 * (Node does it, RFC 9113 §8.2.3), and a request has a body unless its HEADERS frame ended the
 * stream. What an HTTP/2 to HTTP/1.1 downgrade must not pass on is stopped by Node's HTTP/2 layer
 * (nghttp2) before the edge sees the request: a connection-specific header (`connection`,
 * `transfer-encoding`, `upgrade`, `te` but `trailers`…) or DATA that disagrees with the
 * `content-length` resets the stream (or, past the length, the connection); a field whose value
 * holds CR, LF or NUL, or whose name is not a token, is dropped. undici, which writes the origin
 * request, refuses such values too. Responses lose what HTTP/2 forbids (RFC 9113 §8.2.2), and a
 * field the origin repeated that Node's HTTP/2 API takes once (`content-type`…) keeps its first
 * value. A stream the client resets (RST_STREAM) aborts the origin request through the stream's
 * `close`, as a closed HTTP/1.1 connection does; a response the origin cuts short resets the stream
 * (INTERNAL_ERROR) where an HTTP/1.1 client's connection is closed.
 *
 * Unless private origins are allowed, every address the edge connects to is checked with
 * `isPrivateAddress` at connect time, after DNS resolution: an origin name that resolves (or is
 * re-pointed, DNS rebinding) to loopback or an internal network is refused with 502, so a tenant
 * cannot make the edge reach the platform's own services.
 *
 * Errors before the response started become a neutral 502 (refused, reset, unresolvable, private,
 * TLS failure) or 504 (connect or idle timeout). After it started, the client connection is cut so
 * a truncated body never passes for a complete one.
 */

export interface ProxyOptions {
  allowPrivateOrigins: boolean;
  /** `PORTICO_APPS_DOMAIN`, normalized: cookies for it or above it are never relayed (`set-cookie.ts`). */
  appsDomain: string;
  /** Longest wait for a TCP (and TLS) connection to an origin, DNS included, in ms. */
  connectTimeoutMs: number;
  /** Longest silence from an origin, for the response head and between body chunks, in ms. */
  idleTimeoutMs: number;
  /** Largest origin response head accepted, in bytes. Default: Node's (16 KiB). */
  maxHeaderSize?: number;
  logger: Logger;
}

/** An App's origin, parsed once when its route is loaded (see `parseOrigin`). */
export interface ProxyOrigin {
  /** `scheme://host[:port]`: also the key of its connection pool. */
  readonly origin: string;
  /** `origin_url`'s path without its trailing slash (`''` for `/`), prefixed to request targets. */
  readonly pathPrefix: string;
}

/** Parses an `origin_url`; `undefined` unless it is an absolute http(s) URL without credentials. */
export function parseOrigin(originUrl: string): ProxyOrigin | undefined {
  let url: URL;
  try {
    url = new URL(originUrl);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.username !== '' || url.password !== '') return undefined;
  return { origin: url.origin, pathPrefix: url.pathname.replace(/\/+$/, '') };
}

/** Why the edge gave up on a request itself (the client left): never answered, logged at debug. */
class ClientGoneError extends Error {
  readonly code = 'PORTICO_CLIENT_GONE';
}

export class ReverseProxy {
  private readonly agent: Agent;
  private readonly logger: Logger;
  private readonly appsDomain: string;

  constructor(options: ProxyOptions) {
    this.logger = options.logger;
    this.appsDomain = options.appsDomain;
    this.agent = new Agent({
      connect: guardedConnector({
        timeoutMs: options.connectTimeoutMs,
        allowPrivate: options.allowPrivateOrigins,
      }),
      headersTimeout: options.idleTimeoutMs,
      bodyTimeout: options.idleTimeoutMs,
      maxHeaderSize: options.maxHeaderSize,
    });
  }

  /**
   * Relays one request; `target` is the request target as received (a path, with its query),
   * `authority` the name it was routed on with the Host header's port.
   */
  forward(
    req: EdgeRequest,
    res: EdgeResponse,
    origin: ProxyOrigin,
    target: string,
    authority: Authority,
  ): void {
    const headers = req.headers;
    const contentLength = headers['content-length'];
    // A request has a body only if it says so (RFC 9112 §6.3; over HTTP/2, by not ending the stream
    // with its headers); passing `req` otherwise would make undici send an empty chunked body with
    // every GET.
    let body: Readable | null;
    if (req instanceof Http2Exchange) body = req.hasBody ? req.requestBody() : null;
    else
      body =
        headers['transfer-encoding'] !== undefined || (contentLength !== undefined && contentLength !== '0')
          ? req
          : null;
    this.agent.dispatch(
      {
        origin: origin.origin,
        path: origin.pathPrefix + target,
        method: req.method ?? 'GET',
        headers: originRequestHeaders(req, authority),
        body,
      },
      new ResponseRelay(res, origin, this.scope(authority), this.logger),
    );
  }

  /**
   * Relays a request that asks for an upgrade (WebSocket). On `101` the two sockets are piped
   * together raw until either side closes; any other answer is relayed as a response and the
   * socket closed. `head` is what the client sent after the request head, if anything.
   */
  forwardUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    origin: ProxyOrigin,
    target: string,
    authority: Authority,
  ): void {
    this.agent.dispatch(
      {
        origin: origin.origin,
        path: origin.pathPrefix + target,
        method: req.method ?? 'GET',
        headers: originRequestHeaders(req, authority),
        upgrade: req.headers.upgrade ?? 'websocket',
        body: null,
      },
      new UpgradeRelay(socket, head, origin, this.scope(authority), this.logger),
    );
  }

  private scope(authority: Authority): CookieScope {
    return { hostname: authority.hostname, appsDomain: this.appsDomain };
  }

  /** Closes every origin connection now (the edge calls it once nothing is in flight). */
  destroy(): Promise<void> {
    return this.agent.destroy();
  }
}

/**
 * What a relay writes a response to: an HTTP/1.1 response, an HTTP/2 exchange, or an upgrade's
 * socket. `destroy()` cuts the response short so that it cannot pass for complete; 'close' says
 * the client is gone (or the response done).
 */
interface ClientSide {
  write(chunk: Buffer): boolean;
  end(): unknown;
  destroy(): unknown;
  once(event: 'close' | 'drain', listener: () => void): unknown;
  readonly destroyed: boolean;
}

/**
 * Relays an origin's response to a client. Subclasses say how a head is written and how an error
 * is answered; the body path (write, pause on backpressure, resume on drain) is shared.
 */
abstract class Relay implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private done = false;
  protected headWritten = false;

  constructor(
    protected readonly out: ClientSide,
    protected readonly origin: ProxyOrigin,
    protected readonly cookies: CookieScope,
    protected readonly logger: Logger,
  ) {
    out.once('close', this.onClientClose);
  }

  protected abstract writeHead(statusCode: number, headers: IncomingHttpHeaders): void;
  protected abstract answerError(status: PageStatus): void;

  /** Whether the client is gone: its connection closed, or its HTTP/2 stream reset. */
  private gone(): boolean {
    return this.out.destroyed;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    // The client may have left while its route was looked up or the origin connection made.
    if (this.gone()) controller.abort(new ClientGoneError('client closed the connection'));
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
  ): void {
    // Interim responses (103 Early Hints) are not relayed; the final one follows.
    if (statusCode < 200) return;
    this.writeHead(statusCode, headers);
    this.headWritten = true;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.out.write(chunk)) {
      controller.pause();
      this.out.once('drain', this.resume);
    }
  }

  onResponseEnd(): void {
    this.done = true;
    this.out.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.done = true;
    if (error instanceof ClientGoneError || this.gone()) {
      this.logger.debug({ origin: this.origin.origin, err: error }, 'edge: client left before the response');
      return;
    }
    const status = gatewayStatus(error);
    this.logger.warn(
      { origin: this.origin.origin, status, code: errorCode(error), err: error },
      'edge: origin request failed',
    );
    if (this.headWritten) this.out.destroy();
    else this.answerError(status);
  }

  protected finish(): void {
    this.done = true;
  }

  private readonly resume = (): void => {
    this.controller?.resume();
  };

  private readonly onClientClose = (): void => {
    if (!this.done) this.controller?.abort(new ClientGoneError('client closed the connection'));
  };
}

class ResponseRelay extends Relay {
  constructor(
    private readonly res: EdgeResponse,
    origin: ProxyOrigin,
    cookies: CookieScope,
    logger: Logger,
  ) {
    super(res, origin, cookies, logger);
  }

  protected writeHead(statusCode: number, headers: IncomingHttpHeaders): void {
    // Node's own reason phrase: HTTP/2 has none and an origin's may carry anything.
    if (this.res instanceof Http2Exchange) {
      this.res.writeHead(statusCode, h2ResponseHeaders(headers, this.cookies));
      // A response without a body (to HEAD, a 204 or 304) is complete with its head, and its
      // stream may close before undici reports the origin's response ended: that is no client gone.
      if (this.res.bodyless) this.finish();
    } else {
      this.res.writeHead(statusCode, clientResponseHeaders(headers, this.cookies));
    }
  }

  protected answerError(status: PageStatus): void {
    sendPage(this.res, status);
  }
}

class UpgradeRelay extends Relay {
  constructor(
    private readonly socket: Duplex,
    private readonly head: Buffer,
    origin: ProxyOrigin,
    cookies: CookieScope,
    logger: Logger,
  ) {
    super(socket, origin, cookies, logger);
  }

  onRequestUpgrade(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
    originSocket: Duplex,
  ): void {
    this.finish();
    const client = this.socket;
    const closeBoth = (): void => {
      client.destroy();
      originSocket.destroy();
    };
    client.on('error', closeBoth).on('close', closeBoth);
    originSocket.on('error', closeBoth).on('close', closeBoth);
    if (client.destroyed) {
      closeBoth();
      return;
    }
    // The 101 carries the origin's Upgrade, Connection and Sec-WebSocket-* headers untouched: they
    // are the handshake itself. Browsers store cookies set by a handshake too: those are scoped.
    let head = `HTTP/1.1 ${statusCode} Switching Protocols\r\n`;
    for (const name in headers) {
      let value = headers[name];
      if (value === undefined) continue;
      if (name === 'set-cookie') value = scopeSetCookies(value, this.cookies);
      if (typeof value === 'string') head += `${name}: ${value}\r\n`;
      else for (const item of value) head += `${name}: ${item}\r\n`;
    }
    client.write(`${head}\r\n`, 'latin1');
    if (this.head.length > 0) originSocket.write(this.head);

    // No idle timeout on a tunnel (a WebSocket may stay quiet for minutes; Node drops the server's
    // timeout handling once a socket is upgraded): TCP keep-alive finds dead peers.
    originSocket.pipe(client);
    client.pipe(originSocket);
  }

  protected writeHead(statusCode: number, headers: IncomingHttpHeaders): void {
    // The origin declined the upgrade: relay its answer, then close (the body is delimited by the
    // close when the origin gave no length).
    this.socket.write(rawResponse(statusCode, clientResponseHeaders(headers, this.cookies)));
  }

  protected answerError(status: PageStatus): void {
    this.socket.end(rawPage(status));
  }
}

/** A request over HTTP/1.1, or over HTTP/2 (`http2-exchange.ts`). */
export type EdgeRequest = IncomingMessage | Http2Exchange;

/** Pseudo-header fields (`:method`, `:authority`…) start with it: HTTP/2 only, never forwarded. */
const COLON = 0x3a;

/** Always dropped, whatever `Connection` says (RFC 9110 §7.6.1, RFC 9112 §9.6). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/**
 * Dropped from requests because the edge sets them itself (or, for `expect`, already answered), or
 * because they claim what only the edge knows: the client's address (`x-real-ip`, set by nginx and
 * trusted by apps behind it) or the URL asked for (`x-original-url`, `x-rewrite-url`, honoured by
 * IIS rewrites and some frameworks as the real path). Every `x-forwarded-*` is dropped too.
 */
const SET_BY_EDGE = new Set(['host', 'expect', 'forwarded', 'x-real-ip', 'x-original-url', 'x-rewrite-url']);
const X_FORWARDED = 'x-forwarded-';

/** tchar (RFC 9110 §5.6.2): a Forwarded value made only of these needs no quotes. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function isHopByHop(name: string, listed: string[] | undefined): boolean {
  return HOP_BY_HOP.has(name) || name.startsWith('proxy-') || listed?.includes(name) === true;
}

/** The extra header names a `Connection` header lists, lowercased; `undefined` when none. */
function connectionOptions(value: string | string[] | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const joined = typeof value === 'string' ? value : value.join(',');
  // What nearly every client sends: nothing to parse.
  if (joined === 'keep-alive' || joined === 'close') return undefined;
  const names: string[] = [];
  for (const token of joined.split(',')) {
    const name = token.trim().toLowerCase();
    if (name !== '' && name !== 'close' && !HOP_BY_HOP.has(name)) names.push(name);
  }
  return names.length > 0 ? names : undefined;
}

function pushHeader(out: string[], name: string, value: string | string[] | undefined): void {
  if (value === undefined) return;
  if (typeof value === 'string') out.push(name, value);
  else for (const item of value) out.push(name, item);
}

/**
 * The headers sent to the origin, as the flat name, value list undici takes. Built from Node's
 * parsed `req.headers` (lowercase names; repeated fields already joined as RFC 9110 §5.3 allows);
 * `authority` is the name the request was routed on and the Host header's port (`router.ts`), so
 * what the origin reads as the host is normalized and checked, never the client's bytes.
 */
export function originRequestHeaders(req: EdgeRequest, authority: Authority): string[] {
  const headers = req.headers;
  // How Node tells a request that arrived over TLS (`socket.encrypted`, set on TLS sockets only;
  // an HTTP/2 request's socket stands for its session's).
  const scheme: Scheme = 'encrypted' in req.socket ? 'https' : 'http';
  const listed = connectionOptions(headers.connection);
  const out: string[] = [];
  for (const name in headers) {
    if (
      name.charCodeAt(0) === COLON ||
      isHopByHop(name, listed) ||
      SET_BY_EDGE.has(name) ||
      name.startsWith(X_FORWARDED)
    )
      continue;
    pushHeader(out, name, headers[name]);
  }
  const client = clientAddress(req.socket.remoteAddress);
  const defaultPort = scheme === 'https' ? 443 : 80;
  const port = authority.port ?? defaultPort;
  // The port is in the host only when it is not the scheme's default, as a browser's address bar
  // shows it: origins build absolute URLs from this header (the port alone is X-Forwarded-Port).
  const host = port === defaultPort ? authority.hostname : `${authority.hostname}:${port}`;
  out.push(
    'x-forwarded-for',
    appendToList(headers['x-forwarded-for'], client),
    'x-forwarded-proto',
    scheme,
    'x-forwarded-host',
    host,
    'x-forwarded-port',
    String(port),
  );
  const node = client.includes(':') ? `"[${client}]"` : client;
  out.push('forwarded', `for=${node};host=${quoted(host)};proto=${scheme}`);
  return out;
}

/**
 * The origin's response headers as the client gets them, as a flat list for `writeHead`; cookies
 * kept to `cookies.hostname` (`set-cookie.ts`).
 */
export function clientResponseHeaders(headers: IncomingHttpHeaders, cookies: CookieScope): string[] {
  const listed = connectionOptions(headers.connection);
  const out: string[] = [];
  for (const name in headers) {
    if (isHopByHop(name, listed)) continue;
    const value = headers[name];
    pushHeader(
      out,
      name,
      name === 'set-cookie' && value !== undefined ? scopeSetCookies(value, cookies) : value,
    );
  }
  return out;
}

/**
 * Fields Node's HTTP/2 API sends once at most (its `kSingleValueHeaders`, response fields and the
 * rest): a repeated one would make it throw, so HTTP/2 clients get the first value, the one most
 * HTTP/1.1 clients use.
 */
const H2_SINGLE_VALUE = new Set([
  'access-control-allow-credentials',
  'access-control-max-age',
  'access-control-request-method',
  'age',
  'authorization',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-md5',
  'content-range',
  'content-type',
  'date',
  'dnt',
  'etag',
  'expires',
  'from',
  'host',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'range',
  'referer',
  'retry-after',
  'tk',
  'upgrade-insecure-requests',
  'user-agent',
  'x-content-type-options',
]);

/**
 * `clientResponseHeaders` for an HTTP/2 client, as the object Node's HTTP/2 API takes: also without
 * `http2-settings` (connection-specific in HTTP/2 too, RFC 9113 §8.2.2) and with one value only of
 * each field in `H2_SINGLE_VALUE`.
 */
export function h2ResponseHeaders(headers: IncomingHttpHeaders, cookies: CookieScope): OutgoingHttpHeaders {
  const listed = connectionOptions(headers.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (isHopByHop(name, listed) || name === 'http2-settings') continue;
    let value = headers[name];
    if (value === undefined) continue;
    if (name === 'set-cookie') value = scopeSetCookies(value, cookies);
    else if (typeof value !== 'string' && H2_SINGLE_VALUE.has(name)) value = value[0];
    out[name] = value;
  }
  return out;
}

function appendToList(existing: string | string[] | undefined, item: string): string {
  if (existing === undefined || existing === '') return item;
  return `${typeof existing === 'string' ? existing : existing.join(', ')}, ${item}`;
}

/** The client's address as the origin should read it: IPv4 clients of a dual-stack socket unmapped. */
function clientAddress(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

function quoted(value: string): string {
  return TOKEN.test(value) ? value : `"${value.replace(/["\\]/g, '\\$&')}"`;
}

function errorCode(error: Error): string | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);

function gatewayStatus(error: Error): 502 | 504 {
  const code = errorCode(error);
  return code !== undefined && TIMEOUT_CODES.has(code) ? 504 : 502;
}
