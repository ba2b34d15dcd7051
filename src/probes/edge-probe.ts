import { createHash, X509Certificate } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { EDGE_PAGE_HEADER } from '../edge/responses.js';
import type { EdgeServing } from '../store/store.js';

/**
 * One serving probe of one name at one edge address, as a visitor meets it: a TLS handshake with
 * the name as SNI, the certificate presented compared with the one stored as current, then one GET
 * through that connection, which the edge proxies to the App's origin. Network only: what the
 * result means for the domain is serving-probes.ts's.
 */

/** How a probe of one edge ended; the metric's `outcome` label. */
export type ProbeOutcome =
  /** The current certificate, and an answer through the edge. */
  | 'ok'
  /** The edge presented another certificate than the current one (stale, or another name's). */
  | 'certificate_mismatch'
  /** No connection to the edge address (refused, unreachable, a name that does not resolve). */
  | 'unreachable'
  /** The TLS handshake failed: the edge refused the name (an alert) or cut the connection. */
  | 'tls_failed'
  /** The edge answered with its own error page (404: the name is not routed; 5xx: the origin could not be reached). */
  | 'edge_error'
  /** The handshake held but the request got no answer (the connection broke). */
  | 'http_failed'
  /** No result within the probe's time. */
  | 'timeout';

export const PROBE_OUTCOMES: readonly ProbeOutcome[] = [
  'ok',
  'certificate_mismatch',
  'unreachable',
  'tls_failed',
  'edge_error',
  'http_failed',
  'timeout',
];

export interface EdgeProbeResult extends EdgeServing {
  outcome: ProbeOutcome;
}

/** An edge address, `host:port` or `[v6]:port`; the port defaults to 443. */
export interface EdgeAddress {
  host: string;
  port: number;
  /** As configured, the way reports name it. */
  label: string;
}

/** Parses one entry of PORTICO_EDGE_PROBE_ADDRESSES; throws a TypeError naming it. */
export function parseEdgeAddress(spec: string): EdgeAddress {
  const label = spec.trim();
  const match = /^\[([^\]]+)\](?::(\d+))?$/.exec(label) ?? /^([^:[\]]+)(?::(\d+))?$/.exec(label);
  const host = match?.[1] ?? '';
  const port = match?.[2] === undefined ? 443 : Number(match[2]);
  const hostOk =
    net.isIP(host) !== 0 || /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(host);
  if (!match || !hostOk || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TypeError(
      `"${spec}" is not an edge address (host:port, like 10.0.0.5:443 or [2001:db8::5]:443)`,
    );
  }
  return { host, port, label };
}

/** SHA-256 (hex) of the DER of a PEM chain's first certificate: what `certificate_sha256` holds. */
export function leafSha256(certificatePem: string): string {
  return createHash('sha256').update(new X509Certificate(certificatePem).raw).digest('hex');
}

export interface EdgeProbeInput {
  address: EdgeAddress;
  hostname: string;
  /** `leafSha256` of the certificate stored as current; null when none is stored (every presented one is then a mismatch). */
  expectedSha256: string | null;
  /** The whole probe (connect, handshake, request, response head) gets this long. */
  timeoutMs: number;
  signal?: AbortSignal;
}

/** Sent with every probe, so an origin's logs tell probes from visitors. */
export const PROBE_USER_AGENT = 'Portico-Serving-Probe/1';

/**
 * Probes one edge. Never rejects for what the network does: every failure is a result with an
 * outcome and a sentence; only an abort of `signal` (the worker stopping) rejects.
 */
export async function probeEdge(input: EdgeProbeInput): Promise<EdgeProbeResult> {
  const { address, hostname, expectedSha256 } = input;
  const deadline = AbortSignal.timeout(input.timeoutMs);
  const signal = input.signal ? AbortSignal.any([input.signal, deadline]) : deadline;
  const result = (
    outcome: ProbeOutcome,
    fields: Partial<Pick<EdgeServing, 'certificateSha256' | 'status' | 'error'>> = {},
  ): EdgeProbeResult => ({
    address: address.label,
    ok: outcome === 'ok',
    certificateSha256: fields.certificateSha256 ?? null,
    status: fields.status ?? null,
    error: fields.error ?? null,
    outcome,
  });

  let socket: tls.TLSSocket | undefined;
  const stage = { connected: false, handshaken: false };
  // Read at the handshake: a socket destroyed later (a timeout) no longer has its peer's certificate.
  let presented: string | null = null;
  const onAbort = () => socket?.destroy();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const handshake = await new Promise<tls.TLSSocket>((resolve, reject) => {
      socket = tls.connect({
        host: address.host,
        port: address.port,
        // SNI carries names only (RFC 6066 section 3).
        servername: hostname,
        ALPNProtocols: ['http/1.1'],
        // The certificate is compared with the stored one below, not judged by a CA list: a probe
        // reports what is presented, valid or not, rather than stopping at the first doubt.
        rejectUnauthorized: false,
      });
      socket.once('connect', () => {
        stage.connected = true;
      });
      socket.once('secureConnect', () => {
        stage.handshaken = true;
        resolve(socket as tls.TLSSocket);
      });
      socket.once('error', reject);
      socket.once('close', () => reject(new Error('the connection closed during the handshake')));
      if (signal.aborted) socket.destroy();
    });
    presented = shaOf(handshake);
    const response = await get(handshake, hostname);
    const status = response.statusCode ?? 0;
    const fromEdge = response.headers[EDGE_PAGE_HEADER] !== undefined;
    response.resume();
    handshake.destroy();
    if (presented === null || presented !== expectedSha256) {
      const what =
        presented === null ? 'no certificate' : `a certificate (sha256 ${presented.slice(0, 16)}…)`;
      const current =
        expectedSha256 === null
          ? 'no current certificate is stored'
          : `the current one is ${expectedSha256.slice(0, 16)}…`;
      return result('certificate_mismatch', {
        certificateSha256: presented,
        status,
        error: `${address.label} presented ${what} for ${hostname} that is not the current one (${current}): the edge serves a stale certificate`,
      });
    }
    if (fromEdge && status >= 400) {
      const why = status >= 500 ? 'the origin could not be reached through it' : 'it does not route the name';
      return result('edge_error', {
        certificateSha256: presented,
        status,
        error: `${address.label} answered ${status} from its own error page for ${hostname}: ${why}`,
      });
    }
    return result('ok', { certificateSha256: presented, status });
  } catch (error) {
    if (input.signal?.aborted) throw input.signal.reason;
    const sha = presented;
    if (deadline.aborted) {
      const at = !stage.connected
        ? 'connecting'
        : !stage.handshaken
          ? 'in the TLS handshake'
          : 'waiting for the answer';
      return result('timeout', {
        certificateSha256: sha,
        error: `${address.label} did not answer for ${hostname} within ${input.timeoutMs} ms (${at})`,
      });
    }
    const message = describe(error);
    if (!stage.connected) {
      return result('unreachable', { error: `${address.label} could not be reached: ${message}` });
    }
    if (!stage.handshaken) {
      return result('tls_failed', {
        error: `${address.label} refused the TLS handshake for ${hostname}: ${message}`,
      });
    }
    return result('http_failed', {
      certificateSha256: sha,
      error: `${address.label} completed the handshake for ${hostname} but the request failed: ${message}`,
    });
  } finally {
    signal.removeEventListener('abort', onAbort);
    socket?.destroy();
  }
}

/** One GET / over the TLS connection already made; resolves with the response head. */
function get(socket: tls.TLSSocket, hostname: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const request = http.request({
      createConnection: () => socket,
      method: 'GET',
      path: '/',
      headers: { host: hostname, 'user-agent': PROBE_USER_AGENT, connection: 'close' },
    });
    request.once('response', resolve);
    request.once('error', reject);
    request.end();
  });
}

/** SHA-256 (hex) of the DER of the peer's leaf certificate; null when it presented none. */
function shaOf(socket: tls.TLSSocket): string | null {
  // Null, not an object, once the socket is destroyed; empty when the peer sent no certificate.
  const raw = socket.getPeerCertificate()?.raw;
  return raw ? createHash('sha256').update(raw).digest('hex') : null;
}

/** TLS alerts (RFC 8446 section 6) an edge refusing a name sends, by number. */
const TLS_ALERTS: Readonly<Record<number, string>> = {
  40: 'handshake_failure',
  42: 'bad_certificate',
  48: 'unknown_ca',
  70: 'protocol_version',
  80: 'internal_error',
  112: 'unrecognized_name',
  120: 'no_application_protocol',
};

/**
 * An error as a reader wants it: a TLS alert by its number and name (OpenSSL's message is a line
 * of its internals, and its wording changes between versions), else the first line of the message
 * with Node's code beside it, once.
 */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const alert = /alert number (\d+)/.exec(error.message);
  if (alert) {
    const number = Number(alert[1]);
    return `it sent TLS alert ${number} (${TLS_ALERTS[number] ?? 'unknown'})`;
  }
  const message = error.message.split('\n')[0] ?? '';
  const code = (error as NodeJS.ErrnoException).code;
  return code && !message.includes(code) ? `${message} (${code})` : message;
}
