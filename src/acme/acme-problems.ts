import type { ExchangeOutcome } from './ca-transport.js';
import { parseRetryAfter } from './ca-transport.js';
import { type AcmeChallengeType, CertIssueError, type CertIssueErrorCode } from './issuer.js';

/*
 * What the CA said, or failed to say, turned into `CertIssueError`s a customer can act on: a stable
 * code (retryable or not: `RETRYABLE` in issuer.ts) and a sentence saying what to fix.
 */

/** An RFC 7807 problem document, as ACME servers send them (RFC 8555 section 6.7). */
export interface AcmeProblem {
  type: string;
  detail?: string;
  status?: number;
  identifier?: { type: string; value: string };
  subproblems?: AcmeProblem[];
}

/** What a step is about, for its error messages. */
export interface Step {
  /** What the step does, fitting "while …": "placing the order". */
  what: string;
  /** The names it concerns (none for account steps). */
  names: readonly string[];
  signal: AbortSignal | undefined;
  /** The challenge type the step answers, if it answers one. */
  challengeType?: string;
}

/** What a problem document is explained with besides itself. */
export interface ProblemContext {
  what: string;
  names: readonly string[];
  /** The challenge the problem is about, when it is about one: its messages name that type. */
  challengeType?: string;
  status?: number;
  retryAfterSeconds?: number;
}

/**
 * Classifies a failed step from the most specific evidence to the least: the CA's problem
 * document (its `type`), else the HTTP status (429, 5xx), else the transport error, else
 * acme-client's message.
 */
export function explainFailure(
  error: unknown,
  step: Step,
  last: ExchangeOutcome | undefined,
  ca: { host: string; caaIdentities: readonly string[] },
): CertIssueError {
  if (error instanceof CertIssueError) return error;
  const { what } = step;
  if (last !== undefined && 'response' in last) {
    const { status, body, retryAfter } = last.response;
    const retryAfterSeconds = parseRetryAfter(retryAfter);
    const problem = status >= 400 ? asProblem(body) : undefined;
    if (problem !== undefined)
      return problemError(problem, { ...step, status, retryAfterSeconds }, ca.caaIdentities);
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
    return networkError(last.transportError, what, ca.host);
  }
  return new CertIssueError(
    'unknown',
    `Unexpected failure while ${what}: ${error instanceof Error ? error.message : String(error)}`,
    {
      cause: error,
    },
  );
}

/** The error for an ACME problem document: its code by problem type, a message saying what to fix. */
export function problemError(
  problem: AcmeProblem,
  context: ProblemContext,
  caaIdentities: readonly string[],
): CertIssueError {
  if (problem.subproblems !== undefined && problem.subproblems.length > 0) {
    const combined = combine(
      problem.subproblems.map((subproblem) => problemError(subproblem, context, caaIdentities)),
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
        caaIdentities.length > 0
          ? caaIdentities.map((identity) => `\`${name} CAA 0 issue "${identity}"\``).join(' or ')
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

export const ACME_ERROR = 'urn:ietf:params:acme:error:';

/** How messages name a challenge type. */
export function challengeLabel(type: AcmeChallengeType): string {
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
export function combine(errors: CertIssueError[]): CertIssueError | undefined {
  const [first] = errors;
  if (first === undefined || errors.length === 1) return first;
  return new CertIssueError(first.code, errors.map((error) => error.message).join(' '), {
    hostname: first.hostname,
    problemType: first.problemType,
    retryAfterSeconds: first.retryAfterSeconds,
    cause: errors,
  });
}

export function asProblem(value: unknown): AcmeProblem | undefined {
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
