import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** A delivery's body (docs/webhooks.md). */
export interface ReceivedEvent {
  id: string;
  type: string;
  created_at: string;
  data: Record<string, unknown>;
}

export interface WebhookReceiver {
  /** Where to register it: `http://127.0.0.1:{port}/hooks`. */
  url: string;
  /** Requests received so far. */
  received(): number;
  /** The events of the requests answered so far, parsed, in the order they arrived. */
  events: ReceivedEvent[];
  /** Closes it, cutting the connections it holds (a silent receiver holds every one). */
  close(): Promise<void>;
}

/**
 * A webhook receiver on loopback that keeps each event it answers. `answer: false` takes each request and never answers it: the
 * slow receiver whose deliveries hold a worker's slots until their timeout.
 */
export async function startWebhookReceiver({ answer }: { answer: boolean }): Promise<WebhookReceiver> {
  const sockets = new Set<Socket>();
  let received = 0;
  const events: ReceivedEvent[] = [];
  const server = http.createServer((request, response) => {
    received++;
    if (!answer) return;
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      events.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as ReceivedEvent);
      response.writeHead(200).end();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    received: () => received,
    events,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
