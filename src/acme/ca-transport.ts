import { AsyncLocalStorage } from 'node:async_hooks';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import acme from 'acme-client';
import { explainFailure, type Step } from './acme-problems.js';

/*
 * The HTTP side of talking to an ACME CA: the agent and CA bundle its requests use, a silent
 * connection's timeout, and what each step's exchanges showed, so that a failure is explained from
 * the CA's own answer (acme-problems.ts) rather than from acme-client's flattened message.
 */

/** What the CA's directory says about it that error messages use. */
export interface CaInfo {
  /** Domains a CAA record names to allow this CA (`0 issue "letsencrypt.org"`). */
  caaIdentities: string[];
  /**
   * Whether the directory lists `caaIdentities` at all (RFC 8555 makes them optional; Pebble has
   * none): undefined until the directory has been read.
   */
  listsCaaIdentities?: boolean;
}

/**
 * One step of an issuance (an acme-client call) and what its HTTP exchanges with the CA showed.
 *
 * acme-client reports failures as plain `Error`s carrying the problem's `detail` only: the problem
 * `type`, the status and Retry-After are gone, and a transport error becomes a `TypeError` of its
 * own (5.4 reads `response.config` of an error that has no response). So the issuer watches the
 * exchanges underneath, through acme-client's axios instance and the HTTPS agent, and explains a
 * failed step from the last thing that happened in it.
 */
interface Exchange {
  agent: https.Agent;
  signal: AbortSignal | undefined;
  ca: CaInfo;
  last?: ExchangeOutcome;
}

/** The last thing that happened in a step's exchanges with the CA. */
export type ExchangeOutcome = { response: CaResponse } | { transportError: Error };

export interface CaResponse {
  status: number;
  body: unknown;
  retryAfter: string | undefined;
}

const exchanges = new AsyncLocalStorage<Exchange>();

// acme-client sends every request through one axios instance it exports. These interceptors are
// installed once, on import, and act only on requests made inside an issuer's step (an `exchanges`
// store): any other use of acme-client in the process is left alone.
acme.axios.interceptors.request.use((config) => {
  const exchange = exchanges.getStore();
  if (exchange === undefined) return config;
  config.httpsAgent = exchange.agent;
  if (exchange.signal !== undefined) config.signal = exchange.signal;
  // acme-client retries failed requests itself (network errors, 429, 5xx) and sleeps in between for
  // as long as Retry-After says (hours, for Let's Encrypt rate limits), in a timer no signal
  // cancels, while the caller holds a job lease. Retrying is the caller's business here (it knows
  // the lease and the backoff): mark each request as having used up acme-client's retries, which
  // its axios interceptor counts in `retryAttempt`. Its badNonce retries are separate, and stay.
  return Object.assign(config, { retryAttempt: Number.POSITIVE_INFINITY });
});

acme.axios.interceptors.response.use((response) => {
  const exchange = exchanges.getStore();
  if (exchange !== undefined) {
    const retryAfter: unknown = response.headers['retry-after'];
    exchange.last = {
      response: {
        status: response.status,
        body: response.data,
        retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined,
      },
    };
    const meta = directoryMeta(response.data);
    if (meta !== undefined) {
      exchange.ca.caaIdentities = meta.caaIdentities ?? [];
      exchange.ca.listsCaaIdentities = meta.caaIdentities !== undefined;
    }
  }
  return response;
});

/**
 * The HTTPS agent for requests to the CA: trusts the extra CA if any, gives up on a connection that
 * stays silent, and records why a connection failed in the step that opened it. No keep-alive, so
 * a socket (and its errors) always belongs to the one request, and the one step, that opened it.
 */
class CaAgent extends https.Agent {
  constructor(
    ca: string[] | undefined,
    private readonly idleTimeoutMs: number,
  ) {
    super({ ca, keepAlive: false });
  }

  override createConnection(...args: Parameters<https.Agent['createConnection']>) {
    const socket = super.createConnection(...args);
    const exchange = exchanges.getStore();
    if (socket instanceof net.Socket) {
      socket.setTimeout(this.idleTimeoutMs, () => {
        const seconds = Math.round(this.idleTimeoutMs / 1000);
        socket.destroy(Object.assign(new Error(`no answer for ${seconds} s`), { code: 'ETIMEDOUT' }));
      });
      socket.once('error', (error) => {
        if (exchange !== undefined) exchange.last = { transportError: error };
      });
    }
    return socket;
  }
}

/** The CA an issuer talks to: one agent (and CA bundle), and what its directory said. */
export class CaTransport {
  readonly ca: CaInfo = { caaIdentities: [] };
  private readonly agent: CaAgent;
  private readonly host: string;

  constructor(directoryUrl: URL, options: { caFile?: string; requestTimeoutMs?: number }) {
    this.host = directoryUrl.host;
    this.agent = new CaAgent(
      options.caFile === undefined ? undefined : [...tls.rootCertificates, readCaFile(options.caFile)],
      options.requestTimeoutMs ?? 30_000,
    );
  }

  /** Runs one acme-client call, turning its failure into a CertIssueError that says why. */
  async run<T>(step: Step, call: () => Promise<T>): Promise<T> {
    const exchange: Exchange = { agent: this.agent, signal: step.signal, ca: this.ca };
    try {
      return await exchanges.run(exchange, call);
    } catch (error) {
      step.signal?.throwIfAborted();
      throw explainFailure(error, step, exchange.last, {
        host: this.host,
        caaIdentities: this.ca.caaIdentities,
      });
    }
  }
}

/** What an ACME directory's `meta` says that Portico uses, or undefined when `body` is no directory. */
function directoryMeta(body: unknown): { caaIdentities?: string[] } | undefined {
  if (typeof body !== 'object' || body === null || !('newOrder' in body)) return undefined;
  const { meta } = body as { meta?: { caaIdentities?: unknown } };
  const identities = meta?.caaIdentities;
  return Array.isArray(identities)
    ? { caaIdentities: identities.filter((item) => typeof item === 'string') }
    : {};
}

/** Retry-After (RFC 9110 section 10.2.3): delay-seconds or an HTTP date; in seconds from now. */
export function parseRetryAfter(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

function readCaFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(
      `cannot read the ACME CA file ${file}: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}
