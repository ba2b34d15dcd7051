import { type OutgoingHttpHeaders, type ServerResponse, STATUS_CODES } from 'node:http';
import { Http2Exchange } from './http2-exchange.js';

/**
 * The answers the edge writes itself: neutral pages, redirects, ACME key authorizations. Pages name
 * no tenant (no hostname, app or origin), so an unknown name reveals nothing about who is served
 * here, and they are rendered once at start: answering one costs no string building.
 *
 * Each answer comes in two forms: on a response (HTTP/1.1 or HTTP/2), and as raw bytes for a socket
 * that asked for an upgrade (Node hands those over before any response exists); raw answers close
 * the socket.
 */

/** A response to a client, over HTTP/1.1, or HTTP/2 (`http2-exchange.ts`). */
export type EdgeResponse = ServerResponse | Http2Exchange;

export type PageStatus = 400 | 404 | 421 | 502 | 503 | 504;

/**
 * Marks the edge's own pages, so a serving probe (probes/edge-probe.ts) tells the edge's 502 (the
 * origin could not be reached) from the origin's own 500 (the App's business). Names no tenant.
 */
export const EDGE_PAGE_HEADER = 'portico-edge-page';

const MESSAGES: Record<PageStatus, string> = {
  400: 'The request could not be understood.',
  404: 'There is nothing here.',
  421: 'This connection cannot serve this host. Retry on a new connection.',
  502: 'The site could not be reached. Try again later.',
  503: 'The site is temporarily unavailable. Try again shortly.',
  504: 'The site took too long to respond. Try again later.',
};

interface Page {
  readonly headers: string[];
  /** `headers` without `connection`, which HTTP/2 forbids (RFC 9113 §8.2.2): a stream ends alone. */
  readonly h2Headers: OutgoingHttpHeaders;
  readonly body: Buffer;
  readonly raw: Buffer;
}

function renderPage(status: PageStatus): Page {
  const title = `${status} ${STATUS_CODES[status]}`;
  const body = Buffer.from(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head>` +
      `<body><h1>${title}</h1><p>${MESSAGES[status]}</p></body></html>\n`,
  );
  const headers = [
    'content-type',
    'text/html; charset=utf-8',
    'content-length',
    String(body.length),
    // Never cached: a 404 for a domain about to go live, or a passing 502, must not stick.
    'cache-control',
    'no-store',
    'x-content-type-options',
    'nosniff',
    EDGE_PAGE_HEADER,
    String(status),
  ];
  const h2Headers = headerObject(headers);
  // 421 asks the client to retry elsewhere, 400 leaves the connection in doubt: close both.
  if (status === 421 || status === 400) headers.push('connection', 'close');
  return { headers, h2Headers, body, raw: rawResponse(status, headers, body) };
}

const PAGES = Object.fromEntries(
  ([400, 404, 421, 502, 503, 504] as const).map((status) => [status, renderPage(status)]),
) as Record<PageStatus, Page>;

export function sendPage(res: EdgeResponse, status: PageStatus): void {
  const page = PAGES[status];
  if (res instanceof Http2Exchange) res.writeHead(status, page.h2Headers).end(page.body);
  else res.writeHead(status, page.headers).end(page.body);
}

/** 308 keeps the method and body (301 lets clients turn a POST into a GET). */
export function sendRedirect(res: EdgeResponse, location: string): void {
  writeHead(res, 308, ['location', location, 'content-length', '0', 'cache-control', 'no-store']).end();
}

export function sendText(res: EdgeResponse, text: string): void {
  writeHead(res, 200, [
    'content-type',
    'text/plain; charset=utf-8',
    'content-length',
    String(Buffer.byteLength(text)),
    'cache-control',
    'no-store',
  ]).end(text);
}

/**
 * Writes a response head given as a flat name, value list of distinct, HTTP/2-legal names; Node's
 * HTTP/2 API takes an object.
 */
function writeHead(res: EdgeResponse, status: number, headers: string[]): EdgeResponse {
  return res instanceof Http2Exchange
    ? res.writeHead(status, headerObject(headers))
    : res.writeHead(status, headers);
}

/** A flat name, value list of distinct names as an object; `connection` left out (HTTP/2). */
function headerObject(headers: readonly string[]): OutgoingHttpHeaders {
  const object: OutgoingHttpHeaders = {};
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    if (name !== 'connection') object[name] = headers[i + 1];
  }
  return object;
}

/** A page as the whole raw response, for an upgrade socket. */
export function rawPage(status: PageStatus): Buffer {
  return PAGES[status].raw;
}

export function rawRedirect(location: string): Buffer {
  return rawResponse(308, ['location', location, 'content-length', '0', 'cache-control', 'no-store']);
}

/**
 * A response head (and body, if any) as bytes, with `connection: close`: the raw form ends the
 * socket after it. `headers` is a flat name, value list; names and values must already be valid.
 */
export function rawResponse(status: number, headers: readonly string[], body?: Buffer): Buffer {
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] !== 'connection') head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  }
  head += 'connection: close\r\n\r\n';
  return body === undefined
    ? Buffer.from(head, 'latin1')
    : Buffer.concat([Buffer.from(head, 'latin1'), body]);
}
