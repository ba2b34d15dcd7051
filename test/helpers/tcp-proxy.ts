import net, { type AddressInfo } from 'node:net';

export interface TcpProxy {
  /** The port on 127.0.0.1 it listens on (the same after `restore`). */
  readonly port: number;
  /** Closes the listener and cuts every connection through it: the target is unreachable. */
  cut(): Promise<void>;
  /** Listens again on the same port. */
  restore(): Promise<void>;
  /**
   * Stops forwarding without refusing or closing anything: bytes sent either way, on open
   * connections and new ones, go nowhere, as across a silent network partition.
   */
  stall(): void;
  close(): Promise<void>;
}

/**
 * A TCP forwarder on loopback to `target`, for a test that takes a server away from Portico without
 * stopping it: the machine's shared PostgreSQL serves other tests meanwhile. Connections are
 * refused while cut, as from a database whose host is down.
 */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  const pairs = new Set<[net.Socket, net.Socket]>();
  let stalled = false;
  const server = net.createServer((client) => {
    if (stalled) {
      // Accepted, never answered.
      sockets.add(client);
      client.once('close', () => sockets.delete(client));
      client.on('error', () => {});
      client.pause();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    client.once('close', () => pairs.delete(pair));
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const cut = async () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
  };
  return {
    port,
    cut,
    stall: () => {
      stalled = true;
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    restore: () =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      }),
    close: async () => {
      if (server.listening) await cut();
    },
  };
}
