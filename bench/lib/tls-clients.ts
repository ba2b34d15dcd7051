/**
 * TLS clients for the edge benchmark: full handshakes at bounded concurrency (no session is ever
 * offered back, so every connection costs the server a complete handshake), and HTTPS requests each
 * on a new connection. They connect to 127.0.0.1 and name the host in SNI only, so any name works
 * without DNS. Certificates are not verified: the figures are the server's cost, not the client's.
 */
import https from 'node:https';
import tls from 'node:tls';

export interface HandshakeLoad {
  port: number;
  /** The SNI name of the next connection. */
  nextName: () => string;
  concurrency: number;
  /** Stop after this long (seconds) … */
  seconds?: number;
  /** … or after this many connections (whichever comes first). */
  total?: number;
}

export interface HandshakeFigure {
  completed: number;
  failed: number;
  seconds: number;
  perSecond: number;
  /** CPU this client process used per wall-clock second (1.0 = one core busy). */
  clientCpu: number;
  firstError?: string;
  protocol?: string;
  cipher?: string;
}

const CONNECT_TIMEOUT_MS = 10_000;

function handshake(port: number, servername: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername,
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => socket.destroy(new Error('handshake timed out')));
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
  });
}

export async function handshakes(load: HandshakeLoad): Promise<HandshakeFigure> {
  const deadline =
    load.seconds === undefined ? Number.POSITIVE_INFINITY : performance.now() + load.seconds * 1000;
  const total = load.total ?? Number.POSITIVE_INFINITY;
  let begun = 0;
  let completed = 0;
  let failed = 0;
  let firstError: string | undefined;
  let protocol: string | undefined;
  let cipher: string | undefined;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: load.concurrency }, async () => {
      while (begun < total && performance.now() < deadline) {
        begun++;
        try {
          const socket = await handshake(load.port, load.nextName());
          completed++;
          if (protocol === undefined) {
            protocol = socket.getProtocol() ?? undefined;
            cipher = socket.getCipher().name;
          }
          socket.destroy();
        } catch (error) {
          failed++;
          firstError ??= (error as Error).message;
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return {
    completed,
    failed,
    seconds,
    perSecond: completed / seconds,
    clientCpu: (cpu.user + cpu.system) / 1e6 / seconds,
    firstError,
    protocol,
    cipher,
  };
}

/** The protocol and cipher a server negotiates with Node's client (OpenSSL 3, as wrk's). */
export async function negotiated(port: number, servername: string): Promise<string> {
  const socket = await handshake(port, servername);
  const text = `${socket.getProtocol()} ${socket.getCipher().standardName}`;
  socket.destroy();
  return text;
}

export interface RequestsFigure {
  statuses: Map<number, number>;
  failed: number;
  firstError?: string;
  seconds: number;
}

/** `names.length` GET / requests, one per name, each on a new TLS connection with SNI = Host = name. */
export async function requestEach(port: number, names: readonly string[], concurrency: number) {
  const statuses = new Map<number, number>();
  let failed = 0;
  let firstError: string | undefined;
  let next = 0;
  const started = performance.now();
  const one = (name: string) =>
    new Promise<number>((resolve, reject) => {
      const req = https.get(
        {
          host: '127.0.0.1',
          port,
          path: '/',
          servername: name,
          headers: { host: name },
          rejectUnauthorized: false,
          agent: false,
          timeout: CONNECT_TIMEOUT_MS,
        },
        (res) => {
          res.resume();
          res.once('end', () => resolve(res.statusCode ?? 0));
          res.once('error', reject);
        },
      );
      req.once('timeout', () => req.destroy(new Error('request timed out')));
      req.once('error', reject);
    });
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < names.length) {
        const name = names[next++] as string;
        try {
          const status = await one(name);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        } catch (error) {
          failed++;
          firstError ??= (error as Error).message;
        }
      }
    }),
  );
  return {
    statuses,
    failed,
    firstError,
    seconds: (performance.now() - started) / 1000,
  } satisfies RequestsFigure;
}

/** Fails loudly when a target does not answer 200 through its proxy before it is loaded. */
export async function expectOk(name: string, port: number, servername: string): Promise<void> {
  const { statuses, failed, firstError } = await requestEach(port, [servername], 1);
  if (failed > 0 || statuses.get(200) !== 1) {
    throw new Error(
      `${name} did not answer 200 for ${servername}: ${firstError ?? [...statuses.keys()].join()}`,
    );
  }
}
