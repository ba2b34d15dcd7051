/**
 * For tests only: what the edge does for HTTP-01, in miniature. A `ChallengeStore` in memory and a
 * real HTTP server on loopback answering `GET /.well-known/acme-challenge/{token}` from it, where
 * Pebble's validation authority connects. (The real edge answers from the shared database.)
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChallengeStore } from '../../src/acme/issuer.js';

const PREFIX = '/.well-known/acme-challenge/';

/** Key authorizations by token, in memory; one process only, which is all a test needs. */
export class MemoryChallengeStore implements ChallengeStore {
  private readonly answers = new Map<string, string>();

  async put(token: string, keyAuthorization: string): Promise<void> {
    this.answers.set(token, keyAuthorization);
  }

  async remove(token: string): Promise<void> {
    this.answers.delete(token);
  }

  get(token: string): string | undefined {
    return this.answers.get(token);
  }

  get size(): number {
    return this.answers.size;
  }
}

export interface ChallengeRequest {
  /** The Host header without its port: the name being validated. */
  host: string;
  token: string;
  /** Whether the responder had an answer for the token. */
  answered: boolean;
}

export interface Http01Responder {
  port: number;
  /** Challenge requests received so far, in order. */
  requests: ChallengeRequest[];
  close(): Promise<void>;
}

/**
 * Listens on 127.0.0.1:`port` (0: any free port) and answers challenges from `store`: the key
 * authorization as text/plain, or 404 for an unknown token or any other path.
 */
export async function startHttp01Responder(
  store: { get(token: string): string | undefined | Promise<string | undefined> },
  port = 0,
): Promise<Http01Responder> {
  const requests: ChallengeRequest[] = [];
  const server = http.createServer(async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://responder').pathname;
    const token = req.method === 'GET' && path.startsWith(PREFIX) ? path.slice(PREFIX.length) : undefined;
    const answer = token === undefined ? undefined : await store.get(token);
    if (token !== undefined) {
      const host = (req.headers.host ?? '').replace(/:\d+$/, '');
      requests.push({ host, token, answered: answer !== undefined });
    }
    if (answer === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end(answer);
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
