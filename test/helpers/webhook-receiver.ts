import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface WebhookReceiver {
  /** Where to register it: `http://127.0.0.1:{port}/hooks`. */
  url: string;
  /** Requests received so far. */
  received(): number;
  /** Closes it, cutting the connections it holds (a silent receiver holds every one). */
  close(): Promise<void>;
}

/**
 * A webhook receiver on loopback. `answer: false` takes each request and never answers it: the
 * slow receiver whose deliveries hold a worker's slots until their timeout.
 */
export async function startWebhookReceiver({ answer }: { answer: boolean }): Promise<WebhookReceiver> {
  const sockets = new Set<Socket>();
  let received = 0;
  const server = http.createServer((_request, response) => {
    received++;
    if (answer) response.writeHead(200).end();
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
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
