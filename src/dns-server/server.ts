import dgram from 'node:dgram';
import net from 'node:net';
import type { Logger } from '../logger.js';
import { type ChallengeValues, Responder, type Transport } from './responder.js';
import { challengeZone, type ZoneSettings } from './zone.js';

/**
 * The `dns` role's listeners: UDP and TCP on one address and port, both answered by one Responder.
 *
 * TCP follows RFC 7766: each message is preceded by its two-byte length, a connection carries any
 * number of queries, answered as each is ready (clients match answers by id), and a connection
 * idle for IDLE_TIMEOUT_MS is closed. Limits keep a flood from exhausting the process: connections
 * at once, queries in progress per connection, UDP queries in progress. A UDP query past its limit
 * is dropped (the client asks again, or another node); TCP stops reading until answers go out.
 */

export interface DnsServerOptions {
  host: string;
  /** 0: any free port (the same for UDP and TCP). */
  port: number;
  zone: string;
  /** Host names of the dns nodes (outside the zone); empty for `ns.{zone}` at `host` (zone.ts). */
  nameservers: readonly string[];
  /** The challenge TXT values at a label: read per query, from the store in production. */
  values: ChallengeValues;
  logger: Logger;
  now?: () => Date;
  /** How long an idle TCP connection stays open; tests shorten it. */
  idleTimeoutMs?: number;
  /** Called once per query: the header's rcode of the answer sent, or `dropped` (none sent). */
  onQuery?: (transport: Transport, outcome: QueryOutcome) => void;
}

/** What a query got: its answer's rcode by name, or `dropped` (over a limit, or unanswerable). */
export type QueryOutcome = string;

const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

/** The rcode in an answer's header (its lower four bits; BADVERS's upper bits are in its OPT record). */
function outcomeOf(answer: Buffer | undefined): QueryOutcome {
  if (answer === undefined || answer.length < 4) return 'dropped';
  const rcode = answer.readUInt8(3) & 0x0f;
  return RCODE_NAMES[rcode] ?? `RCODE${rcode}`;
}

export interface DnsListener {
  /** The port UDP and TCP are bound to. */
  readonly port: number;
  /** Stops both listeners and closes open TCP connections; queries in progress are dropped. */
  close(): Promise<void>;
}

/** RFC 7766 6.2.3: servers close idle connections after seconds, not minutes. */
const IDLE_TIMEOUT_MS = 10_000;
const MAX_TCP_CONNECTIONS = 1_000;
/** Pipelined queries one TCP connection may have waiting for the store. */
const MAX_PENDING_PER_CONNECTION = 32;
/** UDP queries waiting for the store at once: past this, a store that stopped answering would hold memory. */
const MAX_PENDING_UDP = 10_000;

/** How often a failing store is reported while it keeps failing: each query would be one line. */
const FAILURE_REPORT_INTERVAL_MS = 10_000;

/** Starts the zone's server on `host:port`, UDP and TCP; resolves once both listen. */
export async function startDnsServer(options: DnsServerOptions): Promise<DnsListener> {
  const settings: ZoneSettings = {
    zone: options.zone,
    nameservers: options.nameservers,
    listenHost: options.host,
  };
  const responder = new Responder(
    challengeZone(settings),
    reported(options.values, options.logger),
    options.now,
  );
  const limits: Limits = {
    idleTimeoutMs: options.idleTimeoutMs ?? IDLE_TIMEOUT_MS,
    onQuery: options.onQuery ?? (() => undefined),
  };
  return listenDns(options.host, options.port, responder, options.logger, limits);
}

/**
 * `values`, with its failures logged: the first at once, then one line per interval with how many
 * queries failed since (each was answered SERVFAIL).
 */
function reported(values: ChallengeValues, logger: Logger): ChallengeValues {
  let lastReport = 0;
  let unreported = 0;
  return async (label) => {
    try {
      return await values(label);
    } catch (error) {
      unreported++;
      if (Date.now() - lastReport >= FAILURE_REPORT_INTERVAL_MS) {
        logger.warn(
          { err: error, failedQueries: unreported },
          'dns: the store did not answer; queries get SERVFAIL',
        );
        lastReport = Date.now();
        unreported = 0;
      }
      throw error;
    }
  };
}

interface Limits {
  idleTimeoutMs: number;
  onQuery: NonNullable<DnsServerOptions['onQuery']>;
}

async function listenDns(
  host: string,
  port: number,
  responder: Responder,
  logger: Logger,
  limits: Limits,
): Promise<DnsListener> {
  const family = net.isIPv6(host) ? 'udp6' : 'udp4';
  // With port 0 UDP picks a free port and TCP takes the same one, which another process may hold
  // over TCP only: then both start over with a new port.
  for (let attempt = 0; ; attempt++) {
    const udp = dgram.createSocket({ type: family });
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, host, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    const bound = udp.address().port;
    // Half-open allowed: a client may send its queries and close its side; the answers still go.
    const tcp = net.createServer({ allowHalfOpen: true });
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(bound, host, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      await new Promise<void>((resolve) => udp.close(() => resolve()));
      if (port === 0 && (error as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < 20) continue;
      throw error;
    }
    return serve(udp, tcp, bound, responder, logger, limits);
  }
}

function serve(
  udp: dgram.Socket,
  tcp: net.Server,
  port: number,
  responder: Responder,
  logger: Logger,
  limits: Limits,
): DnsListener {
  let pendingUdp = 0;
  udp.on('message', (message, peer) => {
    if (pendingUdp >= MAX_PENDING_UDP) {
      limits.onQuery('udp', 'dropped');
      return;
    }
    pendingUdp++;
    responder
      .respond(message, 'udp')
      .then((answer) => {
        limits.onQuery('udp', outcomeOf(answer));
        // A send that fails (the peer's address unreachable) concerns that client alone.
        if (answer) udp.send(answer, peer.port, peer.address, () => undefined);
      })
      .catch((error: unknown) => logger.error({ err: error }, 'dns: could not answer a query'))
      .finally(() => {
        pendingUdp--;
      });
  });
  // After bind, errors are about single datagrams (ICMP reports on some systems): never fatal.
  udp.on('error', (error) => logger.debug({ err: error }, 'dns: UDP socket error'));

  const connections = new Set<net.Socket>();
  tcp.maxConnections = MAX_TCP_CONNECTIONS;
  tcp.on('connection', (socket) => {
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
    answerConnection(socket, responder, logger, limits);
  });
  tcp.on('error', (error) => logger.warn({ err: error }, 'dns: TCP listener error'));

  return {
    port,
    close: async () => {
      for (const socket of connections) socket.destroy();
      await Promise.all([
        new Promise<void>((resolve) => udp.close(() => resolve())),
        new Promise<void>((resolve) => tcp.close(() => resolve())),
      ]);
    },
  };
}

/** Reads length-prefixed queries from one connection and writes each answer as it is ready. */
function answerConnection(socket: net.Socket, responder: Responder, logger: Logger, limits: Limits): void {
  socket.setNoDelay(true);
  socket.setTimeout(limits.idleTimeoutMs, () => socket.destroy());
  // A client that resets or goes away mid-answer concerns that connection alone.
  socket.on('error', () => socket.destroy());
  let buffered = Buffer.alloc(0);
  let pending = 0;
  let ended = false;
  socket.on('end', () => {
    ended = true;
    if (pending === 0) socket.end();
  });
  socket.on('data', (chunk) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    while (buffered.length >= 2) {
      const end = 2 + buffered.readUInt16BE(0);
      if (buffered.length < end) break;
      const message = buffered.subarray(2, end);
      buffered = buffered.subarray(end);
      pending++;
      if (pending >= MAX_PENDING_PER_CONNECTION) socket.pause();
      responder
        .respond(message, 'tcp')
        .then((answer) => {
          limits.onQuery('tcp', outcomeOf(answer));
          if (answer === undefined || socket.destroyed) return;
          const length = Buffer.alloc(2);
          length.writeUInt16BE(answer.length);
          socket.write(Buffer.concat([length, answer]));
        })
        .catch((error: unknown) => logger.error({ err: error }, 'dns: could not answer a query'))
        .finally(() => {
          pending--;
          if (ended && pending === 0) socket.end();
          else if (pending < MAX_PENDING_PER_CONNECTION && socket.isPaused()) socket.resume();
        });
    }
  });
}
