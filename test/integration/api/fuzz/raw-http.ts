import { once } from 'node:events';
import type http from 'node:http';
import net from 'node:net';
import type { Seen } from './judge.js';

/*
 * HTTP/1.1 written and read byte for byte on a socket, for what no HTTP client sends: broken
 * framing, invalid UTF-8, pipelining, lying Content-Lengths.
 */

/**
 * What the server does with each connection, seen from inside (the API runs in this process): how
 * many bytes it read and which requests it has not answered yet. A raw exchange ends its side of
 * the connection only once the server waits for the client, so no answer is cut off by an early
 * end, and a request the server cannot finish (a body shorter than its Content-Length) ends too.
 */
export class ServerWatch {
  private readonly connections = new Map<number, { socket: net.Socket; open: Set<http.IncomingMessage> }>();

  constructor(server: http.Server) {
    server.on('connection', (socket: net.Socket) => {
      const port = socket.remotePort as number;
      const entry = { socket, open: new Set<http.IncomingMessage>() };
      this.connections.set(port, entry);
      socket.once('close', () => {
        if (this.connections.get(port) === entry) this.connections.delete(port);
      });
    });
    server.on('request', (request: http.IncomingMessage, response: http.ServerResponse) => {
      const entry = this.connections.get(request.socket.remotePort as number);
      if (!entry) return;
      entry.open.add(request);
      response.once('close', () => entry.open.delete(request));
    });
  }

  /**
   * Whether the server read all `written` bytes of the client at `port` and has nothing to do but
   * wait for more (every request it holds is still missing part of its body); undefined when it
   * has no such connection (not accepted yet, or closed).
   */
  waitsForClient(port: number, written: number): boolean | undefined {
    const entry = this.connections.get(port);
    if (!entry) return undefined;
    return entry.socket.bytesRead >= written && [...entry.open].every((request) => !request.complete);
  }
}

export interface RawResult {
  responses: Seen[];
  /** Bytes after the last complete response (a truncated answer). */
  trailing: string;
  error?: string;
}

/**
 * Sends `bytes` on a new connection, waits until the server answered everything it can (or
 * closed), closes the sending side and reads to the end. `methods` are the requests' methods in
 * order (answers to HEAD carry no body). Bounded: a server that neither answers nor waits fails.
 */
export async function exchange(
  watch: ServerWatch,
  port: number,
  bytes: Buffer,
  methods: string[],
): Promise<RawResult> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  await once(socket, 'connect');
  const localPort = socket.localPort as number;
  const chunks: Buffer[] = [];
  let error: string | undefined;
  let closed = false;
  socket.on('data', (chunk) => chunks.push(chunk));
  socket.on('error', (e: NodeJS.ErrnoException) => {
    // Node answers a malformed request and resets the connection; the answer is what matters.
    if (e.code !== 'ECONNRESET' && e.code !== 'EPIPE') error = `${e.code ?? ''} ${e.message}`;
  });
  const closing = new Promise<void>((resolve) =>
    socket.once('close', () => {
      closed = true;
      resolve();
    }),
  );
  socket.write(bytes);
  const deadline = Date.now() + 15_000;
  while (!closed && watch.waitsForClient(localPort, bytes.length) !== true) {
    if (Date.now() > deadline) {
      error = 'the server held a complete request unanswered for 15 s';
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  if (!closed) socket.end();
  const bound = setTimeout(() => {
    error ??= 'the server did not close within 15 s of the end of the request';
    socket.destroy();
  }, 15_000);
  await closing;
  clearTimeout(bound);
  return { ...parseResponses(Buffer.concat(chunks), [...methods]), error };
}

function parseResponses(data: Buffer, methods: string[]): Omit<RawResult, 'error'> {
  const responses: Seen[] = [];
  let rest = data;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const [statusLine = '', ...lines] = rest.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? -1);
    if (status < 0) break;
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    let after = rest.subarray(end + 4);
    if (status < 200) {
      rest = after;
      continue;
    }
    const method = methods.shift() ?? 'GET';
    let body: Buffer = Buffer.alloc(0);
    if (method === 'HEAD' || status === 204 || status === 304) {
      // no body
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = after.indexOf('\r\n');
        if (lineEnd < 0) return { responses, trailing: rest.toString('latin1') };
        const size = Number.parseInt(after.subarray(0, lineEnd).toString('latin1'), 16);
        if (!Number.isFinite(size) || after.length < lineEnd + 2 + size + 2)
          return { responses, trailing: rest.toString('latin1') };
        parts.push(after.subarray(lineEnd + 2, lineEnd + 2 + size));
        after = after.subarray(lineEnd + 2 + size + 2);
        if (size === 0) break;
      }
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      if (after.length < length) return { responses, trailing: rest.toString('latin1') };
      body = after.subarray(0, length);
      after = after.subarray(length);
    } else {
      body = after;
      after = Buffer.alloc(0);
    }
    responses.push({ status, headers, body: body.toString('utf8'), method });
    rest = after;
  }
  return { responses, trailing: rest.toString('latin1') };
}

/** Concatenates text (as latin1: one byte per character, so any byte can be written) and bytes. */
export const bytesOf = (...parts: (string | Buffer)[]) =>
  Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part, 'latin1') : part)));
