/**
 * A DNS client for tests that look at the bytes: queries built and answers read with dns-packet,
 * sent over real UDP and TCP sockets, with nothing in between (no retries, no TCP fallback, no
 * cache), so a test sees exactly what a server sent. Portico's own resolver (src/dns/) is what
 * tests use to check what a resolver makes of answers; this is for checking the server.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import {
  type DecodedPacket,
  decode,
  encode,
  type OptAnswer,
  type Packet,
  RECURSION_DESIRED,
} from 'dns-packet';

export interface QueryOptions {
  id?: number;
  /** The client's EDNS UDP payload size; undefined sends no OPT record. */
  edns?: number;
  flags?: number;
}

/** A query for `name` and `type`, as a stub resolver sends it (RD set). */
export function dnsQuery(
  name: string,
  type: string,
  { id = 1, edns, flags = RECURSION_DESIRED }: QueryOptions = {},
) {
  const packet: Packet = {
    type: 'query',
    id,
    flags,
    questions: [{ name, type: type as 'TXT', class: 'IN' }],
    additionals:
      edns === undefined
        ? []
        : [{ name: '.', type: 'OPT', udpPayloadSize: edns, flags: 0, options: [] } as unknown as OptAnswer],
  };
  return encode(packet);
}

/**
 * Sends `message` over UDP to `host:port`; resolves with the first datagram that comes back with
 * the message's id (another, such as a late answer to an earlier socket on the same port, is
 * ignored). With
 * `resendEveryMs`, sends it again at that interval until an answer comes, as resolvers do: for a
 * server whose receive buffer a burst may have filled (the kernel then drops datagrams silently).
 */
export function udpExchange(
  port: number,
  message: Buffer,
  host = '127.0.0.1',
  { resendEveryMs }: { resendEveryMs?: number } = {},
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    const timer =
      resendEveryMs === undefined
        ? undefined
        : setInterval(() => socket.send(message, port, host), resendEveryMs);
    const done = () => {
      clearInterval(timer);
      socket.close();
    };
    socket.once('error', (error) => {
      done();
      reject(error);
    });
    socket.on('message', (answer) => {
      if (answer.length < 2 || answer.readUInt16BE(0) !== message.readUInt16BE(0)) return;
      done();
      resolve(answer);
    });
    socket.send(message, port, host);
  });
}

/** A TCP connection to a DNS server: length-prefixed messages both ways (RFC 1035 4.2.2). */
export class DnsTcpConnection {
  private buffered = Buffer.alloc(0);
  private readonly answers: Buffer[] = [];
  private readonly waiting: (() => void)[] = [];
  /** Resolves when the server closes the connection (or it fails). */
  readonly closed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      while (this.buffered.length >= 2) {
        const end = 2 + this.buffered.readUInt16BE(0);
        if (this.buffered.length < end) break;
        this.answers.push(this.buffered.subarray(2, end));
        this.buffered = this.buffered.subarray(end);
      }
      for (const wake of this.waiting.splice(0)) wake();
    });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
  }

  static async open(port: number, host = '127.0.0.1'): Promise<DnsTcpConnection> {
    const socket = net.connect({ port, host });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new DnsTcpConnection(socket);
  }

  /** Writes each message, length first, without waiting for answers (pipelined). */
  send(...messages: Buffer[]): void {
    for (const message of messages) {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(message.length);
      this.socket.write(Buffer.concat([length, message]));
    }
  }

  /** Resolves with the first `count` answers received on this connection, in the order they came. */
  async received(count: number): Promise<Buffer[]> {
    while (this.answers.length < count) {
      if (this.socket.destroyed)
        throw new Error(`the connection closed after ${this.answers.length} answers`);
      await new Promise<void>((resolve) => {
        this.waiting.push(resolve);
        this.socket.once('close', resolve);
      });
    }
    return this.answers.slice(0, count);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** One query over a new TCP connection, closed after the answer. */
export async function tcpExchange(port: number, message: Buffer, host = '127.0.0.1'): Promise<Buffer> {
  const connection = await DnsTcpConnection.open(port, host);
  try {
    connection.send(message);
    const [answer] = await connection.received(1);
    return answer as Buffer;
  } finally {
    connection.close();
  }
}

/** The header's response code as dns-packet names it (NOERROR, NXDOMAIN, …). */
export const rcodeOf = (packet: DecodedPacket): string => (packet as unknown as { rcode: string }).rcode;

/** Each TXT record of the answer section as one string (its strings joined). */
export function txtValues(packet: DecodedPacket): string[] {
  return (packet.answers ?? []).flatMap((answer) =>
    answer.type === 'TXT'
      ? [Buffer.concat((answer.data as (string | Buffer)[]).map((part) => Buffer.from(part))).toString()]
      : [],
  );
}

export { decode };
