import dgram from 'node:dgram';
import net from 'node:net';
import { type DecodedPacket, decode } from 'dns-packet';

/*
 * One DNS message exchange with one server, over UDP or TCP: the transport under WireResolver,
 * which decides what to ask, of whom, and what an answer means.
 */

/** A DNS server address. */
export interface DnsServerAddress {
  host: string;
  port: number;
  family: 4 | 6;
}

/**
 * Parses `host[:port]` as `dns.getServers()` prints it and `PORTICO_DNS_SERVERS`
 * holds it: `1.1.1.1`, `127.0.0.1:5353`, `2606:4700::1111`, `[::1]:5353`.
 * Throws a TypeError naming the bad entry. `minPort` 0 lets a listen address ask for any free port.
 */
export function parseServer(spec: string, defaultPort = 53, minPort = 1): DnsServerAddress {
  const trimmed = spec.trim();
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(trimmed);
  let host = trimmed;
  let port: string | undefined;
  if (bracketed) {
    host = bracketed[1] ?? '';
    port = bracketed[2];
  } else if (!net.isIPv6(trimmed) && trimmed.includes(':')) {
    const colon = trimmed.lastIndexOf(':');
    host = trimmed.slice(0, colon);
    port = trimmed.slice(colon + 1);
  }
  const family = net.isIP(host);
  const portNumber = port === undefined ? defaultPort : Number(port);
  if (
    family === 0 ||
    (port !== undefined && !/^\d+$/.test(port)) ||
    !Number.isInteger(portNumber) ||
    portNumber < minPort ||
    portNumber > 65535
  ) {
    throw new TypeError(
      `DNS server "${spec}" is not an IP address with an optional port (like 1.1.1.1:53 or [2606:4700::1111]:53)`,
    );
  }
  return { host, port: portNumber, family: family === 6 ? 6 : 4 };
}

/** `host:port` as messages and results name a server (`[::1]:5353` for IPv6). */
export function formatServer({ host, port, family }: DnsServerAddress): string {
  return family === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

function decodeOrUndefined(message: Buffer): DecodedPacket | undefined {
  try {
    return decode(message);
  } catch {
    // Malformed datagrams are noise on the wire, not an answer: keep waiting.
    return undefined;
  }
}

export class QueryTimeout extends Error {
  constructor() {
    super('DNS query timed out');
  }
}

type Settle<T> = (outcome: { value: T } | { error: unknown }) => void;

/**
 * Runs one network exchange that settles exactly once: with a value, an error,
 * a QueryTimeout after `timeoutMs`, or the signal's reason on abort. `start`
 * opens the socket and returns how to release it; release always runs.
 */
function exchangeOnce<T>(
  timeoutMs: number,
  signal: AbortSignal | undefined,
  start: (settle: Settle<T>) => () => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let release: (() => void) | undefined;
    const onAbort = () => settle({ error: signal?.reason });
    const timer = setTimeout(() => settle({ error: new QueryTimeout() }), timeoutMs);
    const settle: Settle<T> = (outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      release?.();
      if ('value' in outcome) resolve(outcome.value);
      else reject(outcome.error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    release = start(settle);
    if (settled) release();
  });
}

export function udpQuery(
  server: DnsServerAddress,
  message: Buffer,
  accept: (packet: DecodedPacket) => boolean,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<DecodedPacket> {
  return exchangeOnce<DecodedPacket>(timeoutMs, signal, (settle) => {
    const socket = dgram.createSocket(server.family === 6 ? 'udp6' : 'udp4');
    socket.on('error', (error) => settle({ error }));
    socket.on('message', (datagram) => {
      const packet = decodeOrUndefined(datagram);
      if (packet !== undefined && accept(packet)) settle({ value: packet });
    });
    // A connected socket gets datagrams from the server's address only, and
    // hears of an ICMP "port unreachable" (ECONNREFUSED) instead of waiting
    // out the timeout.
    socket.connect(server.port, server.host, () => socket.send(message));
    return () => socket.close();
  });
}

export function tcpQuery(
  server: DnsServerAddress,
  message: Buffer,
  accept: (packet: DecodedPacket) => boolean,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<DecodedPacket> {
  return exchangeOnce<DecodedPacket>(timeoutMs, signal, (settle) => {
    const socket = net.connect({ host: server.host, port: server.port });
    // Over TCP each message is preceded by its length (RFC 1035 4.2.2), and
    // one 'data' event may hold part of a message or several.
    let pending = Buffer.alloc(0);
    socket.on('connect', () => {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(message.length);
      socket.write(Buffer.concat([length, message]));
    });
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2) {
        const end = 2 + pending.readUInt16BE(0);
        if (pending.length < end) return;
        const packet = decodeOrUndefined(pending.subarray(2, end));
        pending = pending.subarray(end);
        if (packet !== undefined && accept(packet)) settle({ value: packet });
      }
    });
    socket.on('error', (error) => settle({ error }));
    socket.on('close', () =>
      settle({ error: new Error('DNS server closed the TCP connection without an answer') }),
    );
    return () => socket.destroy();
  });
}
