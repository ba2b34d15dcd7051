import { createPrivateKey, X509Certificate } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import acme from 'acme-client';
import { ConfigError } from '../config-error.js';
import type { Resolver } from '../dns/resolver.js';
import type { Logger } from '../logger.js';
import { fetchRenewalInfo, newOrderPayload, offeredProfiles } from './acme-extensions.js';
import { ACME_ERROR, asProblem, challengeLabel, combine, problemError, type Step } from './acme-problems.js';
import type { RenewalInfo } from './ari.js';
import { CaTransport } from './ca-transport.js';
import { checkCaa } from './caa.js';
import {
  type AccountKeyStore,
  type AcmeChallengeType,
  CertIssueError,
  type CertIssuer,
  type ChallengeStore,
  checkHostnames,
  type IssuedCertificate,
  type IssueOptions,
  REVOCATION_REASON_CODES,
  type RevocationReason,
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
   * Where DNS-01 answers go: TXT values at a claim's label in the challenge zone, answered by every
   * dns node (the store's dns_challenges). Needed for `dns-01` among `challengeTypes`.
   */
  dnsChallenges?: DnsChallengeWriter;
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
  /**
   * Where `precheck()` reads CAA records (the recursive resolver verification uses, as the CA
   * asks one). Without it, CAA is left to the CA.
   */
  caaResolver?: Resolver;
  /**
   * External account binding (RFC 8555 section 7.3.4) for a CA that ties ACME accounts to its own
   * customers: sent when the account is registered. Secrets: never logged.
   */
  externalAccountBinding?: { kid: string; hmacKey: string };
  /**
   * The ACME profile every order asks for (`PORTICO_ACME_PROFILE`: Let's Encrypt's `classic`,
   * `tlsserver`, `shortlived`), renewals included; the CA's default when absent. `checkDirectory()`
   * checks at start that the CA offers it.
   */
  profile?: string;
  logger?: IssuerLogger;
}

/** Writes and removes the TXT values the `dns` role answers in the challenge zone. */
export interface DnsChallengeWriter {
  put(label: string, value: string, domainId: string | null): Promise<void>;
  remove(label: string, value: string): Promise<void>;
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
 * errors (acme-problems.ts). Nothing is retried here beyond acme-client's badNonce retries: the caller
 * retries retryable failures on its own schedule, honouring `retryAfterSeconds`.
 */
export class AcmeIssuer implements CertIssuer {
  readonly kind = 'acme';
  /**
   * Not for the platform's own names: a wildcard needs DNS-01, which Portico answers only at a
   * customer's delegation (`IssueOptions.delegation`). A customer's wildcard claim is issued with
   * its delegation (`issue()` takes `*.` names then).
   */
  readonly wildcards = false;
  /** The CA's directory, as certificates record who issued them (`caDirectory`). */
  readonly directoryUrl: string;
  private readonly transport: CaTransport;
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
    this.transport = new CaTransport(url, options);
    this.backoffMinMs = options.backoffMinMs ?? 1000;
    this.backoffMaxMs = Math.max(options.backoffMaxMs ?? 10_000, this.backoffMinMs);
    this.pollTimeoutMs = options.pollTimeoutMs ?? 180_000;
    this.challengeTypes = [...new Set<AcmeChallengeType>(options.challengeTypes ?? ['http-01'])];
    if (this.challengeTypes.length === 0) throw new TypeError('at least one ACME challenge type is needed');
  }

  /**
   * Checks at start what the configuration asks of the CA's directory: the profile must be one it
   * offers (`meta.profiles`), or the start fails with a ConfigError naming the ones it does. A CA
   * that cannot be reached now is no reason to stop serving: that is logged, and left to the first
   * order (which the CA refuses, if the profile is wrong).
   */
  async checkDirectory(signal?: AbortSignal): Promise<void> {
    const { profile, logger } = this.options;
    if (profile === undefined) return;
    let directory: unknown;
    try {
      directory = (
        await this.transport.run({ what: 'reading the directory', names: [], signal }, () =>
          acme.axios.get(this.directoryUrl),
        )
      ).data;
    } catch (error) {
      logger?.warn(
        { directoryUrl: this.directoryUrl, err: error },
        'could not read the ACME directory at start: PORTICO_ACME_PROFILE is checked by the first order',
      );
      return;
    }
    const offered = offeredProfiles(directory);
    if (offered?.includes(profile)) return;
    throw new ConfigError(
      offered === undefined || offered.length === 0
        ? `PORTICO_ACME_PROFILE is "${profile}", but the CA at ${this.directoryUrl} offers no profiles: unset it`
        : `PORTICO_ACME_PROFILE is "${profile}", but the CA at ${this.directoryUrl} offers ${offered.map((name) => `"${name}"`).join(', ')}`,
    );
  }

  /**
   * The CA's renewal window for a certificate it issued (RFC 9773), or undefined when it offers
   * none; see acme-extensions.ts.
   */
  async renewalInfo(certificatePem: string, options: IssueOptions = {}): Promise<RenewalInfo | undefined> {
    const { signal } = options;
    signal?.throwIfAborted();
    const client = await abortable(this.registered(), signal);
    return this.transport.run({ what: 'asking for the renewal information', names: [], signal }, () =>
      fetchRenewalInfo(client, certificatePem),
    );
  }

  /** The URL of the ACME account this issuer acts for, looking it up or registering it first. */
  async accountUrl(options: IssueOptions = {}): Promise<string> {
    return (await abortable(this.registered(), options.signal)).getAccountUrl();
  }

  /**
   * CAA before ordering: the names' CAA records must allow this CA, as its directory names itself
   * (`meta.caaIdentities`), for this account and a challenge type answered (RFC 8657's parameters).
   * A directory without `caaIdentities` (RFC 8555 makes them optional; Pebble lists none) cannot be
   * matched against `issue` records: then only records that forbid every CA (`issue ";"`, a critical
   * unknown tag) are refused here, and the rest is left to the CA, which checks CAA itself before it
   * issues. Refusing them instead would block every name whose records allow this very CA.
   */
  async precheck(hostnames: string[], options: IssueOptions = {}): Promise<void> {
    const resolver = this.options.caaResolver;
    if (resolver === undefined) return;
    // CAA of a wildcard is judged by its issuewild records (caa.ts): one may be asked about.
    const names = checkHostnames(hostnames, { wildcards: true });
    // The directory (read while registering) says who the CA is; the account, who orders.
    const client = await abortable(this.registered(), options.signal);
    const { ca } = this.transport;
    await checkCaa(
      resolver,
      names,
      {
        identities: ca.listsCaaIdentities ? ca.caaIdentities : undefined,
        accountUri: client.getAccountUrl(),
        validationMethods: this.challengeTypes,
      },
      options.signal,
    );
  }

  /**
   * Revokes with the account's key (RFC 8555 section 7.6): the account that ordered a certificate
   * may revoke it. A certificate the CA reports as already revoked is done.
   */
  async revoke(certificatePem: string, reason: RevocationReason, options: IssueOptions = {}): Promise<void> {
    const { signal } = options;
    signal?.throwIfAborted();
    const leaf = new X509Certificate(certificatePem);
    const names = (leaf.subjectAltName ?? '')
      .split(', ')
      .flatMap((san) => (san.startsWith('DNS:') ? [san.slice(4)] : []));
    const client = await abortable(this.registered(), signal);
    const step: Step = { what: 'revoking the certificate', names, signal };
    try {
      await this.transport.run(step, () =>
        client.revokeCertificate(certificatePem, { reason: REVOCATION_REASON_CODES[reason] }),
      );
    } catch (error) {
      if (!(error instanceof CertIssueError) || error.problemType === undefined) throw error;
      if (error.problemType === `${ACME_ERROR}alreadyRevoked`) return;
      // The problem's message was written for orders; say what was refused instead.
      throw new CertIssueError(
        error.code,
        `The CA refused to revoke the certificate of ${names.join(', ')} (serial ${leaf.serialNumber}, ` +
          `${error.problemType}).`,
        { problemType: error.problemType, retryAfterSeconds: error.retryAfterSeconds, cause: error },
      );
    }
    this.options.logger?.info({ names, serial: leaf.serialNumber, reason }, 'ACME certificate revoked');
  }

  async issue(hostnames: string[], options: IssueOptions = {}): Promise<IssuedCertificate> {
    const { signal } = options;
    signal?.throwIfAborted();
    // A wildcard only where DNS-01 can be answered for it: the CA validates one by DNS-01 alone.
    const dns01 = options.delegation !== undefined && this.options.dnsChallenges !== undefined;
    const wildcard = hostnames.find((name) => name.startsWith('*.'));
    if (wildcard !== undefined && !dns01) {
      throw new CertIssueError(
        'rejected_identifier',
        `${wildcard} is a wildcard, whose certificate only DNS-01 can get, and _acme-challenge.${wildcard.slice(2)} is not delegated to Portico's challenge zone: create the certificate record of the domain's dns_records.`,
        { hostname: wildcard },
      );
    }
    const names = checkHostnames(hostnames, { wildcards: dns01 });
    const step = (what: string): Step => ({ what, names, signal });
    const client = await abortable(this.registered(), signal);
    const { profile } = this.options;
    const place = (replaces: string | undefined) =>
      this.transport.run(step('placing the order'), () =>
        client.createOrder(newOrderPayload(names, { profile, replaces })),
      );
    let order: Order;
    try {
      order = await place(options.replaces);
    } catch (error) {
      // RFC 9773 section 5: a CA refuses a `replaces` naming a certificate that was replaced
      // already (an order that failed after the CA took it); the renewal goes ahead without it.
      const refused = error instanceof CertIssueError && error.problemType === `${ACME_ERROR}alreadyReplaced`;
      if (options.replaces === undefined || !refused) throw error;
      order = await place(undefined);
    }
    this.options.logger?.debug({ names, order: order.url }, 'ACME order placed');

    const validated = await this.validate(client, order, step('validating the names'), options.delegation);
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
    const finalizing = await this.transport.run(step('finalizing the order'), () =>
      client.finalizeOrder(validated, csr),
    );
    const issuing = step('issuing the certificate');
    const issued =
      finalizing.status === 'processing' ? await this.poll(client, finalizing, issuing) : finalizing;
    if (issued.status !== 'valid') throw this.orderFailure(issued, issuing);
    const chain = await this.transport.run(step('downloading the certificate'), () =>
      client.getCertificate(issued),
    );
    const certificate = {
      ...certificateFrom(chain, privateKey.toString(), names),
      caDirectory: this.directoryUrl,
    };
    this.options.logger?.info(
      {
        names,
        notAfter: certificate.notAfter.toISOString(),
        order: issued.url,
        profile,
        replaces: options.replaces,
      },
      'ACME certificate issued',
    );
    return certificate;
  }

  /** Answers the order's pending authorizations and waits until validation settles. */
  private async validate(
    client: acme.Client,
    order: Order,
    step: Step,
    delegation: IssueOptions['delegation'],
  ): Promise<Order> {
    const authorizations = await this.transport.run({ ...step, what: 'reading the order' }, () =>
      client.getAuthorizations(order),
    );
    // How to take back each answer published: HTTP-01 tokens and TLS-ALPN-01 names from the
    // ChallengeStore, DNS-01 values from the challenge zone.
    const keys = new Map<string, () => Promise<void>>();
    try {
      // Authorizations the CA reused from an earlier validation are valid already.
      const pending = authorizations.filter((authz) => authz.status === 'pending');
      const answers = await Promise.allSettled(
        pending.map((authz) => this.answer(client, authz, keys, step.signal, delegation)),
      );
      const failed = answers.find((answer) => answer.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
      return order.status === 'pending' ? await this.poll(client, order, step) : order;
    } finally {
      // The CA is done with the answers, whatever the outcome: stale ones would only pile up (and a
      // stale TLS-ALPN-01 answer would be presented to anyone asking for it).
      const removals = await Promise.allSettled([...keys.values()].map((remove) => remove()));
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
    keys: Map<string, () => Promise<void>>,
    signal: AbortSignal | undefined,
    delegation: IssueOptions['delegation'],
  ): Promise<void> {
    const name = authz.identifier.value;
    let submitted = false;
    try {
      const picked = this.pick(authz, delegation !== undefined && this.options.dnsChallenges !== undefined);
      if (picked === undefined && !delegation && this.challengeTypes.every((type) => type === 'dns-01')) {
        throw new CertIssueError(
          'rejected_identifier',
          `Portico answers only DNS-01 (PORTICO_ACME_CHALLENGE) and _acme-challenge.${name} is not delegated to its challenge zone: create the certificate record of the domain's dns_records.`,
          { hostname: name },
        );
      }
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
      // For DNS-01, acme-client answers the TXT value: the digest of the key authorization.
      const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
      try {
        if (type === 'dns-01' && delegation && this.options.dnsChallenges) {
          // At the claim's label, which `_acme-challenge.{name}` is a CNAME to.
          const writer = this.options.dnsChallenges;
          keys.set(`dns-01 ${delegation.label} ${keyAuthorization}`, () =>
            writer.remove(delegation.label, keyAuthorization),
          );
          await writer.put(delegation.label, keyAuthorization, delegation.domainId);
        } else {
          // An HTTP-01 answer is found by the token in the CA's request; a TLS-ALPN-01 answer by
          // the name in the CA's handshake (SNI), the only thing it says.
          const key = type === 'http-01' ? token : tlsAlpnChallengeKey(name);
          keys.set(key, () => this.options.challenges.remove(key));
          await this.options.challenges.put(key, keyAuthorization);
        }
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
      await this.transport.run(validating, () => client.completeChallenge(challenge));
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
        await this.transport
          .run(giveBack, () => client.deactivateAuthorization(authz))
          .catch((error: unknown) => {
            this.options.logger?.debug({ err: error, name }, 'could not deactivate an ACME authorization');
          });
      }
    }
  }

  /**
   * The challenge to answer for `authz`: of the first configured type the CA offers, if any; DNS-01
   * only for a name whose delegation is in place (`delegated`), the others only for a name the CA
   * can reach at the edge, which a delegated name may not yet.
   */
  private pick(
    authz: Authorization,
    delegated: boolean,
  ): { type: AcmeChallengeType; challenge: Challenge; token: string } | undefined {
    const offered: readonly OfferedChallenge[] = authz.challenges;
    // A delegated name is validated by DNS-01 whatever the order of preference: it works wherever
    // the name points (a proxy, the old host), which HTTP-01 and TLS-ALPN-01 do not.
    const types = delegated ? ['dns-01' as const] : this.challengeTypes.filter((type) => type !== 'dns-01');
    for (const type of types) {
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
      const current = await this.transport.run(step, () => client.getOrder(order));
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
    const authorizations = await this.transport.run(step, () => client.getAuthorizations(order));
    const what = 'validating the names';
    const errors = authorizations.flatMap((authz) =>
      authz.challenges.flatMap((challenge: OfferedChallenge) => {
        const problem = asProblem(challenge.error);
        return problem === undefined
          ? []
          : [
              problemError(
                problem,
                { what, names: [authz.identifier.value], challengeType: challenge.type },
                this.transport.ca.caaIdentities,
              ),
            ];
      }),
    );
    return combine(errors) ?? this.orderFailure(order, { ...step, what });
  }

  /** An order that ended in a status other than the one expected, from its own `error` if any. */
  private orderFailure(order: Order, step: Step): CertIssueError {
    const problem = asProblem(order.error);
    if (problem !== undefined) return problemError(problem, step, this.transport.ca.caaIdentities);
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
    const { externalAccountBinding } = this.options;
    const client = new acme.Client({ directoryUrl: this.directoryUrl, accountKey, externalAccountBinding });
    const { email } = this.options;
    const contact = email === undefined ? {} : { contact: [`mailto:${email}`] };
    // No caller's signal: concurrent issuances share this registration.
    const step = (what: string): Step => ({ what, names: [], signal: undefined });
    // Look the account up before registering it (RFC 8555 section 7.3.1): registering a key the CA
    // knows makes acme-client send an update of the account with what it was given, which some CAs
    // (Pebble) refuse when it changes nothing.
    const lookUp = async (): Promise<boolean> => {
      try {
        await this.transport.run(step('looking up the ACME account'), () =>
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
        await this.transport.run(step('registering the ACME account'), () =>
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
