import http2, { type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../logger.js';
import { Http2Exchange } from './http2-exchange.js';
import { H2 } from './tls-alpn.js';

export interface Http2ListenerOptions {
  /** Largest request header list a client may send, in bytes (SETTINGS_MAX_HEADER_LIST_SIZE). */
  maxHeaderListSize: number;
  /** A session with no frame either way for this long is closed, in ms. */
  idleTimeoutMs: number;
  /** Each request, once the listener has answered what HTTP/2 itself asks of it (below). */
  onRequest(exchange: Http2Exchange): void;
  logger: Logger;
}

/**
 * Streams one client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS): each is a request to
 * an origin. Node's default is unlimited; 100 is what RFC 9113 §6.5.2 advises not to go below, and
 * near nginx's 128.
 */
export const MAX_CONCURRENT_STREAMS = 100;

/** `Expect: 100-continue` (RFC 9110 §10.1.1: the token is case-insensitive), as node:http tests it. */
const CONTINUE = /(?:^|\W)100-continue(?:$|\W)/i;

/**
 * HTTP/2 on the edge's HTTPS listener, beside HTTP/1.1: one port, one TLS handshake (SNI, ALPN,
 * TLS-ALPN-01: `tls-alpn.ts`), then each connection goes by the protocol ALPN agreed. `h2` ones go
 * to a `node:http2` server that never listens itself, whose sessions hand each stream over on
 * node:http2's core API, as an `Http2Exchange` (`http2-exchange.ts`: why not the compatibility
 * API), which the edge routes and proxies as it does an HTTP/1.1 request. Every other connection
 * (`http/1.1`, no ALPN, `acme-tls/1`) goes to the HTTPS server's own HTTP/1.1 handling,
 * unchanged, WebSocket upgrades included. Why not `http2.createSecureServer({
 * allowHTTP1 })`: its HTTP/1.1 fallback differs between Node versions (Node 20's ignores the HTTP
 * server's options: no header size limit of the edge's, and a 5-minute request timeout instead of
 * none), and it would open an HTTP/2 session on an `acme-tls/1` connection.
 *
 * What protects the edge: the settings below, and nghttp2's and Node's defaults, relied on as such
 * (test/integration/edge/http2.test.ts holds them to it): a client that opens more streams than
 * the limit it acknowledged loses the connection (PROTOCOL_ERROR); streams reset faster than
 * nghttp2's rate limit (since 1.57: a burst of 1,000, then 33 a second) end the session with GOAWAY,
 * the Rapid Reset mitigation (CVE-2023-44487); a session sending too many invalid frames is closed
 * (`maxSessionInvalidFrames` 1,000, `maxSessionRejectedStreams` 100), and holds at most 10 MB
 * (`maxSessionMemory`); a header block past `maxHeaderListSize` or 128 fields resets its stream.
 * Set here: the streams a client may have open at once, the header list size (the HTTP/1.1 head
 * limit), and the idle timeout: a session silent that long is closed, as an idle HTTP/1.1
 * connection is (slow clients). A TLS handshake has the HTTPS server's own timeout either way.
 */
export class Http2Listener {
  private readonly server: http2.Http2Server;
  private readonly sessions = new Set<ServerHttp2Session>();
  private closing = false;

  constructor(httpsServer: https.Server, options: Http2ListenerOptions) {
    const logger = options.logger;
    const onStreamError = (err: Error): void => logger.debug({ err }, 'edge: HTTP/2 stream failed');
    // No request listener: Node's compatibility layer is set up only for one.
    this.server = http2.createServer({
      settings: {
        maxConcurrentStreams: MAX_CONCURRENT_STREAMS,
        maxHeaderListSize: options.maxHeaderListSize,
        // A server never pushes here; RFC 9113 §6.5.2 forbids a server to announce 1.
        enablePush: false,
      },
    });
    this.server.on(
      'stream',
      (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
        // A stream emits 'error' when it is reset or its session fails: without a listener that
        // would be an uncaught exception. What it means for the request, the 'close' that follows says.
        stream.on('error', onStreamError);
        const method = headers[':method'];
        // Nothing is tunnelled: CONNECT (and RFC 8441's extended CONNECT, never offered) is refused.
        if (method === 'CONNECT') {
          stream.respond({ ':status': 405 }, { endStream: true });
          return;
        }
        const expect = headers.expect;
        if (expect !== undefined) {
          if (!CONTINUE.test(expect)) {
            stream.respond({ ':status': 417 }, { endStream: true });
            return;
          }
          // Asked before the body is sent; none follows if the HEADERS frame ended the stream.
          if (!stream.endAfterHeaders) stream.additionalHeaders({ ':status': 100 });
        }
        options.onRequest(new Http2Exchange(stream, headers, rawHeaders));
      },
    );
    this.server.setTimeout(options.idleTimeoutMs);
    this.server.on('session', (session: ServerHttp2Session) => {
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
      // A handshake that completed while the edge was closing.
      if (this.closing) session.close();
    });
    this.server.on('sessionError', (err: Error) => logger.debug({ err }, 'edge: HTTP/2 session failed'));

    // The HTTPS server's own listener (its HTTP/1.1 handling, set as the TLS server's
    // `secureConnectionListener`) is kept and called for every connection that is not h2.
    const http1 = httpsServer.listeners('secureConnection') as ((socket: TLSSocket) => void)[];
    httpsServer.removeAllListeners('secureConnection');
    httpsServer.on('secureConnection', (socket: TLSSocket) => {
      if (socket.alpnProtocol === H2) this.server.emit('connection', socket);
      else for (const listener of http1) listener.call(httpsServer, socket);
    });
  }

  /**
   * Sends every session GOAWAY: no new streams; each closes once its open streams are done (the
   * HTTPS server's `close` waits for that). Sessions that start later are closed as they start.
   */
  close(): void {
    this.closing = true;
    for (const session of this.sessions) session.close();
  }

  /** Cuts every session now, streams in flight included. */
  destroy(): void {
    for (const session of this.sessions) session.destroy();
  }
}
