import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { constants, type ServerHttp2Stream } from 'node:http2';
import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';

const { NGHTTP2_INTERNAL_ERROR } = constants;

/**
 * One HTTP/2 request and its response, served on node:http2's core API (a `ServerHttp2Stream`).
 * It offers what the edge reads of an HTTP/1.1 request (`method`, `url`, `headers`, `rawHeaders`,
 * `socket`, `httpVersionMajor`) and what it writes to an HTTP/1.1 response (`writeHead`, `write`,
 * `end`, `destroy`, `once`, `destroyed`, `statusCode`), so that routing, the proxy, the edge's own
 * answers and metrics take either with no second copy of their logic.
 *
 * Why not Node's compatibility API (`http2.createServer(onRequest)`), which the edge used first: it
 * wraps every stream in two stream objects of its own (a Readable request, a response) with a dozen
 * listeners, copies each response header through its own validation before Node's, and waits for
 * trailers on every response (a round trip into JavaScript at its end, about 12 µs of CPU here).
 * Under h2load with one stream per connection, bare Node answered about 30% fewer requests per
 * CPU-second with it than with the core API (bench/edge-h2.ts prints both floors), and an h2
 * request through the edge cost about a fifth less CPU once served on the core API (both edges
 * measured in one run: 73 µs against 95, where an HTTP/1.1 request cost 68 on either).
 *
 * What the compatibility API did that the edge now does itself (Http2Listener, and here): an
 * 'error' listener on every stream (a reset would otherwise be an uncaught exception), `100
 * Continue` for `Expect: 100-continue`, 417 for any other expectation, 405 for CONNECT. And here:
 * a response that has no body (to HEAD, or 204, 205, 304) ends the stream with its HEADERS frame,
 * and whatever a handler writes after it is dropped; `destroy()` after the head resets the stream
 * with INTERNAL_ERROR, so a truncated body never passes for a complete one.
 */
export class Http2Exchange {
  readonly httpVersionMajor = 2;
  readonly method: string;
  /** `:path` as received; `''` when there is none (CONNECT). */
  readonly url: string;
  /**
   * The connection's socket, as Node's HTTP/2 session presents it (a stand-in that reads from the
   * TLS socket): `remoteAddress`, `servername`, `encrypted`.
   */
  readonly socket: TLSSocket;
  /** The status written, 0 until then: what metrics report once the response has finished. */
  statusCode = 0;
  /** Whether the response has no body (to HEAD, or 204, 205, 304): its HEADERS frame ended the stream. */
  bodyless = false;
  /** Whether the whole response was handed to the stream: what 'finish' reports. */
  private complete = false;

  constructor(
    readonly stream: ServerHttp2Stream,
    /** Node's header object: pseudo-headers included, `cookie` fields joined with `; `. */
    readonly headers: IncomingHttpHeaders,
    readonly rawHeaders: string[],
  ) {
    // nghttp2 refuses a request without :method; every request but CONNECT has :path.
    this.method = String(headers[':method']);
    this.url = (headers[':path'] as string | undefined) ?? '';
    this.socket = stream.session?.socket as TLSSocket;
  }

  /** Whether a request body follows: the client did not end the stream with its HEADERS frame. */
  get hasBody(): boolean {
    return !this.stream.endAfterHeaders;
  }

  /**
   * The request body as a stream of its own: undici destroys a request's body once it has sent it,
   * which on the stream itself would reset it before the response. Backpressure goes through to
   * the stream (and so to the client's flow-control window); the body is destroyed if the stream
   * closes before its end (a reset), which aborts the origin request.
   */
  requestBody(): Readable {
    return new RequestBody(this.stream);
  }

  /** Whether the client is gone: its stream reset, or its connection closed. */
  get destroyed(): boolean {
    return this.stream.destroyed;
  }

  /**
   * Sends the response head (`headers` HTTP/2-legal, without `:status`, left unchanged); a no-op
   * once the stream is gone or answered.
   */
  writeHead(status: number, headers: OutgoingHttpHeaders): this {
    const stream = this.stream;
    if (stream.destroyed || stream.closed || stream.headersSent) return this;
    this.statusCode = status;
    this.bodyless = this.method === 'HEAD' || status === 204 || status === 205 || status === 304;
    // A body of no stated length has its end given by the edge alone: see `destroy()`.
    const waitForTrailers = !this.bodyless && headers['content-length'] === undefined;
    try {
      stream.respond({ ...headers, ':status': status }, { endStream: this.bodyless, waitForTrailers });
      if (this.bodyless) this.complete = true;
      else if (waitForTrailers) stream.once('wantTrailers', endStream);
    } catch (error) {
      // A head Node refuses (a field HTTP/2 forbids that got through): reset rather than hang.
      stream.destroy(error as Error);
    }
    return this;
  }

  /** Writes body bytes; `false` asks the caller to wait for 'drain'. Dropped when there is no body. */
  write(chunk: Buffer): boolean {
    if (this.bodyless || this.stream.destroyed) return true;
    return this.stream.write(chunk);
  }

  end(body?: Buffer | string): this {
    const stream = this.stream;
    if (stream.destroyed || stream.writableEnded) return this;
    this.complete = stream.headersSent;
    if (body === undefined || this.bodyless) stream.end();
    else stream.end(body);
    return this;
  }

  /**
   * Resets the stream (INTERNAL_ERROR): a response cut short must not look complete. Node ends the
   * writable side of a stream it closes, and sends what that queued (an empty DATA frame with
   * END_STREAM) before the RST_STREAM, if it sends one at all. A client takes that for the end of
   * the body: a body with a content-length, it finds short, which RFC 9113 §8.1.1 makes a
   * malformed response (every client checks it); a body without one, it would take as complete. So
   * a response without a content-length waits for trailers: its end then carries no END_STREAM,
   * which `endStream` sends (as empty trailers) on its normal end only. Not on every response:
   * waiting for trailers costs each one a round trip into JavaScript, about 12 µs of CPU (a tenth
   * of an h2 request through the edge).
   */
  destroy(): void {
    if (!this.stream.destroyed) this.stream.close(NGHTTP2_INTERNAL_ERROR);
  }

  /**
   * 'close': the stream is done, answered or reset; 'drain': write more; 'finish': the stream is
   * done and the whole response was handed to it, as node:http's 'finish' says of a response (the
   * stream's own 'finish' does not come when it closes before its writable side has finished).
   */
  once(event: 'close' | 'drain' | 'finish', listener: () => void): this {
    if (event === 'finish') {
      this.stream.once('close', () => {
        if (this.complete) listener();
      });
    } else this.stream.once(event, listener);
    return this;
  }
}

/**
 * 'wantTrailers' listener of a body without a content-length: it has been sent in full, so the
 * stream is ended, by an empty DATA frame with END_STREAM (Node's form of empty trailers). Not on
 * a stream already reset.
 */
function endStream(this: ServerHttp2Stream): void {
  if (!this.destroyed && !this.closed) this.sendTrailers({});
}

/** The request body of one stream, for undici (see `Http2Exchange.requestBody`). */
class RequestBody extends Readable {
  constructor(private readonly stream: ServerHttp2Stream) {
    super();
    let ended = false;
    stream.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) stream.pause();
    });
    stream.once('end', () => {
      ended = true;
      this.push(null);
    });
    // Closed before its end: reset by the client (or by nghttp2, for DATA that disagrees with the
    // content-length). undici takes a body closed early as an aborted request.
    stream.once('close', () => {
      if (!ended) this.destroy();
    });
  }

  override _read(): void {
    this.stream.resume();
  }
}
