import { AsyncLocalStorage } from 'node:async_hooks';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import acme from 'acme-client';
import type { Logger } from '../logger.js';
import {
  type AccountKeyStore,
  type AcmeChallengeType,
  CertIssueError,
  type CertIssueErrorCode,
  type CertIssuer,
  type ChallengeStore,
  checkHostnames,
  type IssuedCertificate,
  type IssueOptions,
  tlsAlpnChallengeKey,
} from './issuer.js';

export type IssuerLogger = Pick<Logger, 'debug' | 'info' | 'warn'>;

export interface AcmeIssuerOptions {
  /** The CA's ACME directory, over HTTPS (Let's Encrypt's, or Pebble's in tests). */
  directoryUrl: string;
  /** Contact registered with the account: the CA writes there about expiring certificates and policy. */
  email?: string;
  /**
   * A PEM file of CA certificates to trust for the ACME server's HTTPS, besides Node's bundled roots
   * (NODE_EXTRA_CA_CERTS no longer applies then): a staging or test CA (Pebble) whose server
   * certificate no public root signs. It applies to this issuer's requests and nothing else.
   */
  caFile?: string;
  accountKeys: AccountKeyStore;
  challenges: ChallengeStore;
  /**
   * The challenge types to answer, in order of preference: for each name the first one the CA
   * offers is used (default `http-01` only). `tls-alpn-01` needs the edge's HTTPS listener on port
   * 443 of the name, `http-01` its HTTP listener on port 80.
   */
  challengeTypes?: readonly AcmeChallengeType[];
  /** First wait before polling an order, doubled after each poll up to `backoffMaxMs` (default 1 s). */
  backoffMinMs?: number;
  /** Longest wait between polls of an order (default 10 s). */
  backoffMaxMs?: number;
  /** How long validation, then issuance, may take at the CA before `issue()` gives up (default 3 min). */
  pollTimeoutMs?: number;
  /** A connection to the CA that stays silent this long fails as `network` (default 30 s). */
  requestTimeoutMs?: number;
  logger?: IssuerLogger;
}

type Order = acme.Order;
type Authorization = acme.Authorization;
type Challenge = Authorization['challenges'][number];

/**
 * A challenge as the CA offers it. acme-client 5.4 types challenges as http-01 or dns-01 only,
 * though its calls handle tls-alpn-01 too: challenges are read through this wider shape, and handed
 * back to acme-client as its `Challenge`.
 */
interface OfferedChallenge {
  type: string;
  url: string;
  token?: string;
  error?: object;
}

/** An RFC 7807 problem document, as ACME servers send them (RFC 8555 section 6.7). */
interface AcmeProblem {
  type: string;
  detail?: string;
  status?: number;
  identifier?: { type: string; value: string };
  subproblems?: AcmeProblem[];
}

/** What the CA's directory says about it that error messages use. */
interface CaInfo {
  /** Domains a CAA record names to allow this CA (`0 issue "letsencrypt.org"`). */
  caaIdentities: string[];
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
  last?: { response: CaResponse } | { transportError: Error };
}

interface CaResponse {
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
    const caaIdentities = directoryCaaIdentities(response.data);
    if (caaIdentities !== undefined) exchange.ca.caaIdentities = caaIdentities;
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

/** What a step is about, for its error messages. */
interface Step {
  /** What the step does, fitting "while …": "placing the order". */
  what: string;
  /** The names it concerns (none for account steps). */
  names: readonly string[];
  signal: AbortSignal | undefined;
  /** The challenge type the step answers, if it answers one. */
  challengeType?: string;
}

/** What a problem document is explained with besides itself. */
interface ProblemContext {
  what: string;
  names: readonly string[];
  /** The challenge the problem is about, when it is about one: its messages name that type. */
  challengeType?: string;
  status?: number;
  retryAfterSeconds?: number;
}

/**
 * Issues certificates from an ACME CA (RFC 8555) with HTTP-01 or TLS-ALPN-01 (RFC 8737) challenges,
 * over acme-client.
 *
 * One issuance: look up or register the account once per issuer, with the key every node shares
 * through `AccountKeyStore`; place an order; for each pending authorization, pick the first
 * challenge type of `challengeTypes` the CA offers, put its key authorization in the
 * `ChallengeStore` (where any edge node answers it: over HTTP by token, or in a TLS handshake by
 * name) and ask the CA to validate; poll the order until validation settles; remove the key
 * authorizations; finalize with a CSR for a fresh ECDSA P-256 key; poll until the certificate is
 * ready; download the chain.
 *
 * acme-client's own challenge pre-check never runs (it belongs to `auto()`, which is not used): it
 * asks the system resolver, which is neither the CA's view of DNS nor, in tests, the test's DNS
 * server. The CA's validation is the check that counts.
 *
 * Failures become `CertIssueError`s, classified from the CA's problem documents and from transport
 * errors (see `explain`). Nothing is retried here beyond acme-client's badNonce retries: the caller
 * retries retryable failures on its own schedule, honouring `retryAfterSeconds`.
 */
export class AcmeIssuer implements CertIssuer {
  readonly kind = 'acme';
  /** A wildcard needs DNS-01, which Portico does not answer yet. */
  readonly wildcards = false;
  private readonly directoryUrl: string;
  private readonly agent: CaAgent;
  private readonly ca: CaInfo = { caaIdentities: [] };
  private readonly backoffMinMs: number;
  private readonly backoffMaxMs: number;
  private readonly pollTimeoutMs: number;
  private readonly challengeTypes: readonly AcmeChallengeType[];
  private registration: Promise<acme.Client> | undefined;

  constructor(private readonly options: AcmeIssuerOptions) {
    const url = new URL(options.directoryUrl);
    if (url.protocol !== 'https:') {
      throw new TypeError(`the ACME directory must be an https: URL (RFC 8555), got ${options.directoryUrl}`);
    }
    this.directoryUrl = url.href;
    this.agent = new CaAgent(
      options.caFile === undefined ? undefined : [...tls.rootCertificates, readCaFile(options.caFile)],
      options.requestTimeoutMs ?? 30_000,
    );
    this.backoffMinMs = options.backoffMinMs ?? 1000;
    this.backoffMaxMs = Math.max(options.backoffMaxMs ?? 10_000, this.backoffMinMs);
    this.pollTimeoutMs = options.pollTimeoutMs ?? 180_000;
    this.challengeTypes = [...new Set<AcmeChallengeType>(options.challengeTypes ?? ['http-01'])];
    if (this.challengeTypes.length === 0) throw new TypeError('at least one ACME challenge type is needed');
  }

  /** The URL of the ACME account this issuer acts for, looking it up or registering it first. */
  async accountUrl(options: IssueOptions = {}): Promise<string> {
    return (await abortable(this.registered(), options.signal)).getAccountUrl();
  }

  async issue(hostnames: string[], options: IssueOptions = {}): Promise<IssuedCertificate> {
    const { signal } = options;
    signal?.throwIfAborted();
    const names = checkHostnames(hostnames);
    const step = (what: string): Step => ({ what, names, signal });
    const client = await abortable(this.registered(), signal);
    const identifiers = names.map((value) => ({ type: 'dns', value }));
    const order = await this.run(step('placing the order'), () => client.createOrder({ identifiers }));
    this.options.logger?.debug({ names, order: order.url }, 'ACME order placed');

    const validated = await this.validate(client, order, step('validating the names'));
    if (validated.status !== 'ready') {
      throw await this.validationFailure(client, validated, step('reading why validation failed'));
    }

    const privateKey = await acme.crypto.createPrivateEcdsaKey('P-256');
    const [first = ''] = names;
    const [, csr] = await acme.crypto.createCsr(
      // The common name is optional and capped at 64 characters; the SAN carries every name.
      { commonName: first.length <= 64 ? first : undefined, altNames: names },
      privateKey,
    );
    const finalizing = await this.run(step('finalizing the order'), () =>
      client.finalizeOrder(validated, csr),
    );
    const issuing = step('issuing the certificate');
    const issued =
      finalizing.status === 'processing' ? await this.poll(client, finalizing, issuing) : finalizing;
    if (issued.status !== 'valid') throw this.orderFailure(issued, issuing);
    const chain = await this.run(step('downloading the certificate'), () => client.getCertificate(issued));
    const certificate = certificateFrom(chain, privateKey.toString(), names);
    this.options.logger?.info(
      { names, notAfter: certificate.notAfter.toISOString(), order: issued.url },
      'ACME certificate issued',
    );
    return certificate;
  }

  /** Answers the order's pending authorizations and waits until validation settles. */
  private async validate(client: acme.Client, order: Order, step: Step): Promise<Order> {
    const authorizations = await this.run({ ...step, what: 'reading the order' }, () =>
      client.getAuthorizations(order),
    );
    // The ChallengeStore keys of the answers published: HTTP-01 tokens, TLS-ALPN-01 names.
    const keys = new Set<string>();
    try {
      // Authorizations the CA reused from an earlier validation are valid already.
      const pending = authorizations.filter((authz) => authz.status === 'pending');
      const answers = await Promise.allSettled(
        pending.map((authz) => this.answer(client, authz, keys, step.signal)),
      );
      const failed = answers.find((answer) => answer.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
      return order.status === 'pending' ? await this.poll(client, order, step) : order;
    } finally {
      // The CA is done with the answers, whatever the outcome: stale ones would only pile up (and a
      // stale TLS-ALPN-01 answer would be presented to anyone asking for it).
      const removals = await Promise.allSettled([...keys].map((key) => this.options.challenges.remove(key)));
      for (const removal of removals) {
        if (removal.status === 'rejected') {
          this.options.logger?.warn({ err: removal.reason }, 'could not remove an ACME challenge answer');
        }
      }
    }
  }

  /**
   * Publishes the answer to one authorization's challenge, of the first configured type the CA
   * offers, and asks the CA to check it.
   */
  private async answer(
    client: acme.Client,
    authz: Authorization,
    keys: Set<string>,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const name = authz.identifier.value;
    let submitted = false;
    try {
      const picked = this.pick(authz);
      if (picked === undefined) {
        const offered = authz.challenges.map((item) => item.type).join(', ') || 'none';
        throw new CertIssueError(
          'rejected_identifier',
          `The CA offers none of the configured challenge types for ${name}: Portico answers ` +
            `${this.challengeTypes.join(', ')} (PORTICO_ACME_CHALLENGE) and the CA offers ${offered}.`,
          { hostname: name },
        );
      }
      const { type, challenge, token } = picked;
      // An HTTP-01 answer is found by the token in the CA's request; a TLS-ALPN-01 answer by the
      // name in the CA's handshake (SNI), the only thing it says.
      const key = type === 'http-01' ? token : tlsAlpnChallengeKey(name);
      const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
      keys.add(key);
      try {
        await this.options.challenges.put(key, keyAuthorization);
      } catch (error) {
        throw new CertIssueError(
          'unknown',
          `Could not store the ${challengeLabel(type)} challenge answer for ${name}: ${messageOf(error)}`,
          { hostname: name, cause: error },
        );
      }
      this.options.logger?.debug({ name, type }, 'ACME challenge answer published');
      const validating = {
        what: `asking the CA to validate ${name}`,
        names: [name],
        signal,
        challengeType: type,
      };
      await this.run(validating, () => client.completeChallenge(challenge));
      submitted = true;
    } finally {
      // An authorization left pending counts against the CA's pending-authorization limit until it
      // expires (days later): give it back when it was never submitted for validation.
      if (!submitted) {
        const giveBack = {
          what: `giving back the authorization for ${name}`,
          names: [name],
          signal: undefined,
        };
        await this.run(giveBack, () => client.deactivateAuthorization(authz)).catch((error: unknown) => {
          this.options.logger?.debug({ err: error, name }, 'could not deactivate an ACME authorization');
        });
      }
    }
  }

  /** The challenge to answer for `authz`: of the first configured type the CA offers, if any. */
  private pick(
    authz: Authorization,
  ): { type: AcmeChallengeType; challenge: Challenge; token: string } | undefined {
    const offered: readonly OfferedChallenge[] = authz.challenges;
    for (const type of this.challengeTypes) {
      const challenge = offered.find((item) => item.type === type);
      if (typeof challenge?.token === 'string') {
        return { type, challenge: challenge as Challenge, token: challenge.token };
      }
    }
    return undefined;
  }

  /** Polls `order` until it leaves its current status (pending or processing), with a growing delay. */
  private async poll(client: acme.Client, order: Order, step: Step): Promise<Order> {
    const deadline = Date.now() + this.pollTimeoutMs;
    for (let wait = this.backoffMinMs; ; ) {
      await delay(wait, step.signal);
      const current = await this.run(step, () => client.getOrder(order));
      if (current.status !== order.status) return current;
      wait = Math.min(wait * 2, this.backoffMaxMs);
      if (Date.now() + wait > deadline) {
        throw new CertIssueError(
          'timeout',
          `The CA had not finished ${step.what} after ${Math.round(this.pollTimeoutMs / 1000)} s. ` +
            'Nothing needs fixing on your side: try again later.',
        );
      }
    }
  }

  /** Why the CA did not validate the order: the errors of its failed challenges. */
  private async validationFailure(client: acme.Client, order: Order, step: Step): Promise<CertIssueError> {
    const authorizations = await this.run(step, () => client.getAuthorizations(order));
    const what = 'validating the names';
    const errors = authorizations.flatMap((authz) =>
      authz.challenges.flatMap((challenge: OfferedChallenge) => {
        const problem = asProblem(challenge.error);
        return problem === undefined
          ? []
          : [
              this.fromProblem(problem, {
                what,
                names: [authz.identifier.value],
                challengeType: challenge.type,
              }),
            ];
      }),
    );
    return combine(errors) ?? this.orderFailure(order, { ...step, what });
  }

  /** An order that ended in a status other than the one expected, from its own `error` if any. */
  private orderFailure(order: Order, step: Step): CertIssueError {
    const problem = asProblem(order.error);
    if (problem !== undefined) return this.fromProblem(problem, step);
    return new CertIssueError(
      'unknown',
      `The CA left the order for ${step.names.join(', ')} ${order.status} while ${step.what}, without saying why.`,
    );
  }

  /** The registered client, shared by every issuance of this issuer; retried after a failure. */
  private registered(): Promise<acme.Client> {
    this.registration ??= this.register().catch((error: unknown) => {
      this.registration = undefined;
      throw error;
    });
    return this.registration;
  }

  private async register(): Promise<acme.Client> {
    const accountKey = await this.accountKey();
    const client = new acme.Client({ directoryUrl: this.directoryUrl, accountKey });
    const { email } = this.options;
    const contact = email === undefined ? {} : { contact: [`mailto:${email}`] };
    // No caller's signal: concurrent issuances share this registration.
    const step = (what: string): Step => ({ what, names: [], signal: undefined });
    // Look the account up before registering it (RFC 8555 section 7.3.1): registering a key the CA
    // knows makes acme-client send an update of the account with what it was given, which some CAs
    // (Pebble) refuse when it changes nothing.
    const lookUp = async (): Promise<boolean> => {
      try {
        await this.run(step('looking up the ACME account'), () =>
          client.createAccount({ onlyReturnExisting: true, ...contact }),
        );
        return true;
      } catch (error) {
        if (error instanceof CertIssueError && error.problemType === `${ACME_ERROR}accountDoesNotExist`) {
          return false;
        }
        throw error;
      }
    };
    if (!(await lookUp())) {
      try {
        await this.run(step('registering the ACME account'), () =>
          client.createAccount({ termsOfServiceAgreed: true, ...contact }),
        );
      } catch (error) {
        // Another node registering the same key at the same moment turns this registration into
        // that refused update; the account exists now all the same.
        if (!(await lookUp())) throw error;
      }
    }
    this.options.logger?.info(
      { accountUrl: client.getAccountUrl(), directoryUrl: this.directoryUrl },
      'ACME account ready',
    );
    return client;
  }

  /** The shared account key, created (ECDSA P-256) by whichever node needs it first. */
  private async accountKey(): Promise<string> {
    const { accountKeys, logger } = this.options;
    try {
      const stored = await accountKeys.get();
      if (stored !== undefined) return stored;
      const created = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
      const winner = await accountKeys.putIfAbsent(created);
      if (winner === created) logger?.info({ directoryUrl: this.directoryUrl }, 'ACME account key created');
      return winner;
    } catch (error) {
      const message = `Could not load or store the ACME account key: ${messageOf(error)}`;
      throw new CertIssueError('unknown', message, { cause: error });
    }
  }

  /** Runs one acme-client call, turning its failure into a CertIssueError that says why. */
  private async run<T>(step: Step, call: () => Promise<T>): Promise<T> {
    const exchange: Exchange = { agent: this.agent, signal: step.signal, ca: this.ca };
    try {
      return await exchanges.run(exchange, call);
    } catch (error) {
      step.signal?.throwIfAborted();
      throw this.explain(error, step, exchange);
    }
  }

  /**
   * Classifies a failed step from the most specific evidence to the least: the CA's problem
   * document (its `type`), else the HTTP status (429, 5xx), else the transport error, else
   * acme-client's message.
   */
  private explain(error: unknown, step: Step, exchange: Exchange): CertIssueError {
    if (error instanceof CertIssueError) return error;
    const { what } = step;
    const last = exchange.last;
    if (last !== undefined && 'response' in last) {
      const { status, body, retryAfter } = last.response;
      const retryAfterSeconds = parseRetryAfter(retryAfter);
      const problem = status >= 400 ? asProblem(body) : undefined;
      if (problem !== undefined) return this.fromProblem(problem, { ...step, status, retryAfterSeconds });
      if (status === 429) {
        const message = `The CA is rate limiting requests (HTTP 429) while ${what}.`;
        return new CertIssueError('rate_limited', message, { retryAfterSeconds, cause: error });
      }
      if (status >= 500) {
        const message = `The CA failed (HTTP ${status}) while ${what}. Nothing needs fixing on your side: try again later.`;
        return new CertIssueError('server_error', message, { retryAfterSeconds, cause: error });
      }
    }
    if (last !== undefined && 'transportError' in last) {
      return networkError(last.transportError, what, new URL(this.directoryUrl).host);
    }
    return new CertIssueError('unknown', `Unexpected failure while ${what}: ${messageOf(error)}`, {
      cause: error,
    });
  }

  /** The error for an ACME problem document: its code by problem type, a message saying what to fix. */
  private fromProblem(problem: AcmeProblem, context: ProblemContext): CertIssueError {
    if (problem.subproblems !== undefined && problem.subproblems.length > 0) {
      const combined = combine(
        problem.subproblems.map((subproblem) => this.fromProblem(subproblem, context)),
      );
      if (combined !== undefined) return combined;
    }
    const { what, names, retryAfterSeconds } = context;
    const hostname = problem.identifier?.value ?? (names.length === 1 ? names[0] : undefined);
    const name = hostname ?? (names.length > 0 ? names.join(', ') : 'the names');
    const said = problem.detail ? ` The CA said: "${problem.detail}".` : '';
    const details = { hostname, problemType: problem.type, retryAfterSeconds };
    const error = (code: CertIssueErrorCode, message: string) => new CertIssueError(code, message, details);
    const type = problem.type.startsWith(ACME_ERROR) ? problem.type.slice(ACME_ERROR.length) : problem.type;
    switch (type) {
      case 'rateLimited': {
        const when = retryAfterSeconds === undefined ? 'later' : `in ${retryAfterSeconds} s`;
        return error(
          'rate_limited',
          `The CA's rate limit stopped ${what}.${said} Nothing needs fixing: try again ${when}.`,
        );
      }
      case 'badNonce':
        return error(
          'bad_nonce',
          `The CA kept rejecting request nonces while ${what}.${said} This passes: try again.`,
        );
      case 'caa': {
        const allow =
          this.ca.caaIdentities.length > 0
            ? this.ca.caaIdentities.map((identity) => `\`${name} CAA 0 issue "${identity}"\``).join(' or ')
            : 'a CAA record that allows this CA (`0 issue "<the CA\'s domain>"`)';
        return error(
          'caa_forbidden',
          `A CAA record forbids this CA to issue for ${name}.${said} Fix the CAA records of ${name}, or of its ` +
            `closest parent domain that has some: remove them, or add ${allow}.`,
        );
      }
      case 'connection':
      case 'tls': {
        const { label, listener } = challengeWords(context.challengeType);
        return error(
          'challenge_failed',
          `The CA could not ${label === undefined ? 'reach' : `complete the ${label} challenge with`} ${name}.${said} ` +
            `Point ${name} at the edge (its CNAME record, or A/AAAA records for an apex domain) and make ` +
            `sure the edge answers ${listener} there.`,
        );
      }
      case 'unauthorized':
      case 'incorrectResponse': {
        const { label } = challengeWords(context.challengeType);
        return error(
          'unauthorized',
          `The CA reached ${name} but did not get the expected ${label ?? 'challenge'} answer.${said} Another ` +
            `server answers for ${name}: point its CNAME (or its A/AAAA records) at the edge only, and remove ` +
            'other A/AAAA records.',
        );
      }
      case 'dns':
        return error(
          'dns_problem',
          `The CA could not look up ${name} in DNS.${said} Check that ${name} has its CNAME record (or A/AAAA ` +
            'records for an apex domain) and that its DNS servers answer.',
        );
      case 'rejectedIdentifier':
      case 'unsupportedIdentifier':
        return error(
          'rejected_identifier',
          `The CA will not issue a certificate for ${name}.${said} This name cannot get a certificate from this CA.`,
        );
      case 'serverInternal':
        return error(
          'server_error',
          `The CA failed internally while ${what}.${said} Nothing needs fixing on your side: try again later.`,
        );
      default: {
        const status = context.status ?? 0;
        const code = status === 429 ? 'rate_limited' : status >= 500 ? 'server_error' : 'unknown';
        return error(code, `The CA refused ${what} (${problem.type}).${said}`);
      }
    }
  }
}

const ACME_ERROR = 'urn:ietf:params:acme:error:';

/** How messages name a challenge type. */
function challengeLabel(type: AcmeChallengeType): string {
  return type === 'http-01' ? 'HTTP-01' : 'TLS-ALPN-01';
}

/** What a message about a failed challenge of `type` (a type the CA named, if known) says. */
function challengeWords(type: string | undefined): { label: string | undefined; listener: string } {
  switch (type) {
    case 'http-01':
      return { label: challengeLabel(type), listener: 'HTTP on port 80' };
    case 'tls-alpn-01':
      return { label: challengeLabel(type), listener: 'HTTPS on port 443' };
    default:
      return { label: undefined, listener: 'HTTP on port 80 and HTTPS on port 443' };
  }
}

/** Errors meaning the server's certificate chains to no trusted root: a missing `caFile`, usually. */
const UNTRUSTED_CERTIFICATE = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
]);

function networkError(error: Error, what: string, host: string): CertIssueError {
  const code = (error as NodeJS.ErrnoException).code;
  const reason =
    code !== undefined && !error.message.includes(code) ? `${error.message} (${code})` : error.message;
  const advice =
    code !== undefined && UNTRUSTED_CERTIFICATE.has(code)
      ? 'Its HTTPS certificate is not trusted: if a private CA signs it (a staging or test CA such as Pebble), ' +
        "give that CA's certificate as the ACME CA file (PORTICO_ACME_CA_FILE)."
      : 'Check the network path to it; this is retried.';
  return new CertIssueError(
    'network',
    `Could not talk to the ACME server ${host} while ${what}: ${reason}. ${advice}`,
    {
      cause: error,
    },
  );
}

/** One error for several: the first one's code and details, every message. */
function combine(errors: CertIssueError[]): CertIssueError | undefined {
  const [first] = errors;
  if (first === undefined || errors.length === 1) return first;
  return new CertIssueError(first.code, errors.map((error) => error.message).join(' '), {
    hostname: first.hostname,
    problemType: first.problemType,
    retryAfterSeconds: first.retryAfterSeconds,
    cause: errors,
  });
}

function asProblem(value: unknown): AcmeProblem | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const candidate = value as Partial<Record<keyof AcmeProblem, unknown>>;
  if (typeof candidate.type !== 'string') return undefined;
  const identifier = candidate.identifier as { type?: unknown; value?: unknown } | undefined;
  const subproblems = Array.isArray(candidate.subproblems)
    ? candidate.subproblems.map(asProblem).filter((problem) => problem !== undefined)
    : undefined;
  return {
    type: candidate.type,
    detail: typeof candidate.detail === 'string' ? candidate.detail : undefined,
    status: typeof candidate.status === 'number' ? candidate.status : undefined,
    identifier:
      typeof identifier?.type === 'string' && typeof identifier.value === 'string'
        ? { type: identifier.type, value: identifier.value }
        : undefined,
    subproblems,
  };
}

/** `meta.caaIdentities` of an ACME directory, or undefined when `body` is no directory that has them. */
function directoryCaaIdentities(body: unknown): string[] | undefined {
  if (typeof body !== 'object' || body === null || !('newOrder' in body)) return undefined;
  const { meta } = body as { meta?: { caaIdentities?: unknown } };
  const identities = meta?.caaIdentities;
  return Array.isArray(identities) ? identities.filter((item) => typeof item === 'string') : undefined;
}

/** Retry-After (RFC 9110 section 10.2.3): delay-seconds or an HTTP date; in seconds from now. */
function parseRetryAfter(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

/** The issued certificate, after checking it is for our key and covers every name. */
function certificateFrom(chainPem: string, privateKeyPem: string, names: string[]): IssuedCertificate {
  // X509Certificate reads the first certificate of the chain: the leaf.
  const leaf = new X509Certificate(chainPem);
  const missing = names.filter((name) => leaf.checkHost(name) === undefined);
  const mismatch =
    missing.length > 0
      ? `it lacks ${missing.join(', ')}`
      : leaf.checkPrivateKey(createPrivateKey(privateKeyPem))
        ? undefined
        : 'it is for another key';
  if (mismatch !== undefined) {
    throw new CertIssueError(
      'unknown',
      `The CA returned a certificate that does not match the order (${mismatch}).`,
    );
  }
  return {
    certificatePem: chainPem.endsWith('\n') ? chainPem : `${chainPem}\n`,
    privateKeyPem,
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    issuer: 'acme',
  };
}

function readCaFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`cannot read the ACME CA file ${file}: ${messageOf(error)}`, { cause: error });
  }
}

/** Waits `ms`, rejecting with the signal's reason if it aborts first. */
async function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (error) {
    signal?.throwIfAborted();
    throw error;
  }
}

/** `promise`, or the signal's reason as soon as it aborts (the work behind `promise` goes on). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
