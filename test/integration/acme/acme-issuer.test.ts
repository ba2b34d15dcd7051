import { createPrivateKey, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AcmeIssuer, type AcmeIssuerOptions } from '../../../src/acme/acme-issuer.js';
import {
  type AccountKeyStore,
  CertIssueError,
  type ChallengeStore,
  type IssuedCertificate,
} from '../../../src/acme/issuer.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import {
  type Http01Responder,
  MemoryChallengeStore,
  startHttp01Responder,
} from '../../helpers/http01-responder.js';
import { createLocalhostTls, freePort, type Pebble, startPebble } from '../../helpers/pebble.js';

/** The account key in memory, counting writes; `putIfAbsent` is atomic as JavaScript runs it. */
class MemoryAccountKeyStore implements AccountKeyStore {
  key: string | undefined;
  puts = 0;

  async get(): Promise<string | undefined> {
    return this.key;
  }

  async putIfAbsent(privateKeyPem: string): Promise<string> {
    this.puts++;
    this.key ??= privateKeyPem;
    return this.key;
  }
}

function splitPem(chain: string): X509Certificate[] {
  return (chain.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).map(
    (block) => new X509Certificate(block),
  );
}

/** Rejects unless `promise` rejects with a CertIssueError; answers it. */
async function issueError(promise: Promise<unknown>): Promise<CertIssueError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!(error instanceof CertIssueError)) throw new Error(`expected a CertIssueError, got ${String(error)}`);
  return error;
}

describe('AcmeIssuer against Pebble', () => {
  let dns: TestDnsServer;
  let challenges: MemoryChallengeStore;
  let responder: Http01Responder;
  let pebble: Pebble;

  beforeAll(async () => {
    dns = await startDnsServer();
    challenges = new MemoryChallengeStore();
    responder = await startHttp01Responder(challenges);
    // Pebble's default 5% nonce rejection stays on: acme-client must ride it out.
    pebble = await startPebble({ dnsServer: dns.address, httpPort: responder.port });
  });
  afterAll(async () => {
    await pebble?.stop();
    await responder?.close();
    await dns?.close();
  });

  const issuer = (options: Partial<AcmeIssuerOptions> = {}) =>
    new AcmeIssuer({
      directoryUrl: pebble.directoryUrl,
      caFile: pebble.caFile,
      accountKeys: new MemoryAccountKeyStore(),
      challenges,
      backoffMinMs: 20,
      backoffMaxMs: 200,
      ...options,
    });

  it('issues certificates for five domains at once, chaining to Pebble’s root', async () => {
    expect(pebble.output()).toContain('Configured to reject 5% of good nonces');
    const requests = [
      ['alpha.example.test'],
      ['bravo.example.test', 'www.bravo.example.test'],
      ['charlie.example.test'],
      ['delta.example.test'],
      ['echo.example.test'],
    ];
    for (const name of requests.flat()) dns.set(name, 'A', '127.0.0.1');
    const acme = issuer();
    const started = Date.now();

    const issued = await Promise.all(requests.map((names) => acme.issue(names)));

    const root = new X509Certificate(await pebble.rootPem());
    expect(root.checkIssued(root)).toBe(true);
    issued.forEach((certificate: IssuedCertificate, index) => {
      const names = requests[index] ?? [];
      const chain = splitPem(certificate.certificatePem);
      expect(chain).toHaveLength(2);
      const [leaf, intermediate] = chain as [X509Certificate, X509Certificate];
      expect(leaf.checkIssued(intermediate)).toBe(true);
      expect(leaf.verify(intermediate.publicKey)).toBe(true);
      expect(intermediate.checkIssued(root)).toBe(true);
      expect(intermediate.verify(root.publicKey)).toBe(true);
      expect(intermediate.ca).toBe(true);

      expect(leaf.subjectAltName).toBe(names.map((name) => `DNS:${name}`).join(', '));
      expect(leaf.checkPrivateKey(createPrivateKey(certificate.privateKeyPem))).toBe(true);
      expect(leaf.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
      expect(certificate.notBefore.getTime()).toBe(new Date(leaf.validFrom).getTime());
      expect(certificate.notAfter.getTime()).toBe(new Date(leaf.validTo).getTime());
      expect(certificate.notBefore.getTime()).toBeLessThanOrEqual(Date.now());
      expect(certificate.notAfter.getTime()).toBeGreaterThan(started);
      expect(certificate.issuer).toBe('acme');
    });
    // Pebble fetched every name's challenge from the responder, and the answers are gone again.
    for (const name of requests.flat()) {
      expect(responder.requests).toContainEqual(expect.objectContaining({ host: name, answered: true }));
    }
    expect(challenges.size).toBe(0);
  });

  it('creates the account key once and every issuer sharing the store uses it', async () => {
    const accountKeys = new MemoryAccountKeyStore();
    dns.set('account.example.test', 'A', '127.0.0.1');
    // Two nodes starting on an empty store at once: both make a key, one key is stored, both use it.
    const first = issuer({ accountKeys });
    const second = issuer({ accountKeys });
    const [firstUrl, secondUrl] = await Promise.all([first.accountUrl(), second.accountUrl()]);
    expect(accountKeys.puts).toBe(2);
    expect(firstUrl).toBe(secondUrl);
    const key = accountKeys.key;
    expect(createPrivateKey(key ?? '').asymmetricKeyDetails?.namedCurve).toBe('prime256v1');

    // A later node finds the key and creates none.
    const later = issuer({ accountKeys });
    await later.issue(['account.example.test']);
    expect(await later.accountUrl()).toBe(firstUrl);
    expect(accountKeys.puts).toBe(2);
    expect(accountKeys.key).toBe(key);
  });

  it('reports a name pointing where nothing listens as challenge_failed, saying what the CA saw', async () => {
    dns.set('elsewhere.example.test', 'A', '127.0.0.2');
    const error = await issueError(issuer().issue(['elsewhere.example.test']));
    expect(error).toMatchObject({
      code: 'challenge_failed',
      retryable: false,
      hostname: 'elsewhere.example.test',
      problemType: 'urn:ietf:params:acme:error:connection',
    });
    expect(error.message).toContain('elsewhere.example.test');
    expect(error.message).toContain('127.0.0.2');
    expect(error.message).toMatch(/connection refused/i);
    expect(error.message).toContain('A/AAAA');
    expect(challenges.size).toBe(0);
  });

  it('reports a server that does not know the token as unauthorized', async () => {
    dns.set('other-server.example.test', 'A', '127.0.0.1');
    // As if the name pointed at a server other than the edge: the answer never reaches the responder.
    const elsewhere: ChallengeStore = { put: async () => {}, remove: async () => {} };
    const error = await issueError(issuer({ challenges: elsewhere }).issue(['other-server.example.test']));
    expect(error).toMatchObject({
      code: 'unauthorized',
      retryable: false,
      hostname: 'other-server.example.test',
      problemType: 'urn:ietf:params:acme:error:unauthorized',
    });
    expect(error.message).toContain('404');
    expect(error.message).toContain('point its CNAME');
  });

  it('reports a name missing from DNS with what the CA saw', async () => {
    // Boulder calls this a `dns` problem; Pebble a `connection` one. Either way the message says it.
    const error = await issueError(issuer().issue(['missing.example.test']));
    expect(error).toMatchObject({
      code: 'challenge_failed',
      retryable: false,
      hostname: 'missing.example.test',
    });
    expect(error.message).toContain('could not resolve');
    expect(error.message).toContain('Point missing.example.test at the edge');
  });

  it('stops at once when aborted, and removes the challenge answers', async () => {
    dns.set('aborted.example.test', 'A', '127.0.0.1');
    const controller = new AbortController();
    const reason = new Error('worker shutting down');
    const aborting: ChallengeStore = {
      put: async (token, keyAuthorization) => {
        await challenges.put(token, keyAuthorization);
        controller.abort(reason);
      },
      remove: (token) => challenges.remove(token),
    };
    await expect(
      issuer({ challenges: aborting }).issue(['aborted.example.test'], { signal: controller.signal }),
    ).rejects.toBe(reason);
    expect(challenges.size).toBe(0);
  });

  it('classifies an unreachable ACME server as network, retryable', async () => {
    const port = await freePort();
    const error = await issueError(
      issuer({ directoryUrl: `https://127.0.0.1:${port}/dir` }).issue(['net.example.test']),
    );
    expect(error).toMatchObject({ code: 'network', retryable: true });
    expect(error.message).toContain(`127.0.0.1:${port}`);
    expect(error.message).toContain('ECONNREFUSED');
  });

  it('trusts the CA file for its own requests only, and says so when it is missing', async () => {
    const error = await issueError(issuer({ caFile: undefined }).issue(['trust.example.test']));
    expect(error).toMatchObject({ code: 'network', retryable: true });
    expect(error.message).toContain('PORTICO_ACME_CA_FILE');
    // Nothing process-wide: a plain HTTPS request still refuses Pebble's certificate.
    await expect(
      new Promise((resolve, reject) => https.get(pebble.directoryUrl, resolve).on('error', reject)),
    ).rejects.toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  });
});

/**
 * A FAKE ACME server, for the CA answers Pebble never gives (it has no rate limits, CAA checks or
 * blocked names, and offers every challenge type): it registers any account and answers every new
 * order with the problem a test scripts, or with an order whose one authorization offers the
 * challenges a test scripts and fails validation. Real HTTPS, real acme-client, real classification.
 */
describe('AcmeIssuer classifying CA problems (fake ACME server)', () => {
  interface Scripted {
    status: number;
    body?: object;
    headers?: Record<string, string>;
  }
  let dir: string;
  let caFile: string;
  let server: https.Server;
  let baseUrl: string;
  let orderAnswer: Scripted = { status: 500 };
  let orderRequests = 0;
  /** The authorization of a scripted order: the challenges offered, and the problem validation ends with. */
  const authorization = {
    offered: [] as { type: string; token: string }[],
    problem: {} as object,
    /** Payloads POSTed to the authorization and its challenges, in order (JWS payloads, decoded). */
    posts: [] as { url: string; payload: unknown }[],
    validated: false,
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'portico-fake-acme-'));
    const tls = await createLocalhostTls(dir);
    caFile = tls.caFile;
    let nonce = 0;
    server = https.createServer(
      { cert: await readFile(tls.certFile), key: await readFile(tls.keyFile) },
      (req, res) => {
        res.setHeader('replay-nonce', `nonce-${++nonce}`);
        const json = (status: number, body: object, headers: Record<string, string> = {}) => {
          const type = status >= 400 ? 'application/problem+json' : 'application/json';
          res.writeHead(status, { 'content-type': type, ...headers }).end(JSON.stringify(body));
        };
        const chunks: Buffer[] = [];
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('end', () => route(Buffer.concat(chunks).toString('utf8')));
        // The JWS payload of a POST: an object, or '' for a POST-as-GET.
        const payloadOf = (body: string): unknown => {
          const jws = JSON.parse(body) as { payload: string };
          const text = Buffer.from(jws.payload, 'base64url').toString('utf8');
          return text === '' ? '' : JSON.parse(text);
        };
        const scriptedAuthz = () => ({
          status: authorization.validated ? 'invalid' : 'pending',
          identifier: { type: 'dns', value: 'shop.example.test' },
          challenges: authorization.offered.map((challenge, index) => ({
            ...challenge,
            url: `${baseUrl}/challenge/${index}`,
            ...(authorization.validated
              ? { status: 'invalid', error: authorization.problem }
              : { status: 'pending' }),
          })),
        });
        const scriptedOrder = (status: string) => ({
          status,
          identifiers: [{ type: 'dns', value: 'shop.example.test' }],
          authorizations: [`${baseUrl}/authz/1`],
          finalize: `${baseUrl}/order/1/finalize`,
        });
        const route = (body: string) => {
          if (req.url === '/dir') {
            json(200, {
              newNonce: `${baseUrl}/nonce`,
              newAccount: `${baseUrl}/account`,
              newOrder: `${baseUrl}/order`,
              meta: { caaIdentities: ['ca.example'] },
            });
          } else if (req.url === '/nonce') {
            res.writeHead(200).end();
          } else if (req.url === '/account') {
            json(201, { status: 'valid' }, { location: `${baseUrl}/account/1` });
          } else if (req.url === '/order' && authorization.offered.length > 0) {
            orderRequests++;
            json(201, scriptedOrder('pending'), { location: `${baseUrl}/order/1` });
          } else if (req.url === '/order') {
            orderRequests++;
            json(orderAnswer.status, orderAnswer.body ?? {}, orderAnswer.headers);
          } else if (req.url === '/order/1') {
            json(200, scriptedOrder(authorization.validated ? 'invalid' : 'pending'));
          } else if (req.url === '/authz/1' || req.url?.startsWith('/challenge/')) {
            authorization.posts.push({ url: req.url, payload: payloadOf(body) });
            if (req.url.startsWith('/challenge/')) authorization.validated = true;
            json(200, scriptedAuthz());
          } else {
            json(404, { type: 'urn:ietf:params:acme:error:malformed', detail: 'no such resource' });
          }
        };
      },
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    baseUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const attempt = (answer: Scripted, names = ['shop.example.test']) => {
    orderAnswer = answer;
    orderRequests = 0;
    const acme = new AcmeIssuer({
      directoryUrl: `${baseUrl}/dir`,
      caFile,
      accountKeys: new MemoryAccountKeyStore(),
      challenges: new MemoryChallengeStore(),
    });
    return issueError(acme.issue(names));
  };
  const problem = (type: string, detail: string, extra: object = {}) => ({
    type: `urn:ietf:params:acme:error:${type}`,
    detail,
    ...extra,
  });

  /** An issuance whose authorization offers `offered` and whose validation fails with `failure`. */
  const validation = async (
    challengeTypes: AcmeIssuerOptions['challengeTypes'],
    offered: string[],
    failure: object = problem('connection', 'Connection refused'),
  ) => {
    Object.assign(authorization, {
      offered: offered.map((type) => ({ type, token: `token-${type}` })),
      problem: failure,
      posts: [],
      validated: false,
    });
    const challenges = new MemoryChallengeStore();
    const puts: string[] = [];
    const removals: string[] = [];
    const recording: ChallengeStore = {
      put: (key, keyAuthorization) => {
        puts.push(key);
        return challenges.put(key, keyAuthorization);
      },
      remove: (key) => {
        removals.push(key);
        return challenges.remove(key);
      },
    };
    const acme = new AcmeIssuer({
      directoryUrl: `${baseUrl}/dir`,
      caFile,
      accountKeys: new MemoryAccountKeyStore(),
      challenges: recording,
      challengeTypes,
      backoffMinMs: 10,
    });
    try {
      const error = await issueError(acme.issue(['shop.example.test']));
      const answered = authorization.posts.filter((post) => post.url.startsWith('/challenge/'));
      return { error, puts, removals, answered, posts: authorization.posts, left: challenges.size };
    } finally {
      authorization.offered = [];
    }
  };

  it('falls back to the next configured challenge type when the CA does not offer the first', async () => {
    const result = await validation(['tls-alpn-01', 'http-01'], ['dns-01', 'http-01']);
    // The HTTP-01 challenge (index 1) was answered, its token published and removed again.
    expect(result.answered.map((post) => post.url)).toEqual(['/challenge/1']);
    expect(result.puts).toEqual(['token-http-01']);
    expect(result.removals).toEqual(['token-http-01']);
    expect(result.left).toBe(0);
    // The failure is described for the type used.
    expect(result.error).toMatchObject({ code: 'challenge_failed', hostname: 'shop.example.test' });
    expect(result.error.message).toContain('HTTP-01');
    expect(result.error.message).toContain('HTTP on port 80');
    expect(result.error.message).not.toContain('TLS-ALPN-01');
  });

  it('and the other way round: TLS-ALPN-01, answered by name, when HTTP-01 is not offered', async () => {
    const result = await validation(
      ['http-01', 'tls-alpn-01'],
      ['tls-alpn-01', 'dns-01'],
      problem('unauthorized', 'Incorrect validation certificate for tls-alpn-01 challenge'),
    );
    expect(result.answered.map((post) => post.url)).toEqual(['/challenge/0']);
    expect(result.puts).toEqual(['tls-alpn-01:shop.example.test']);
    expect(result.removals).toEqual(['tls-alpn-01:shop.example.test']);
    expect(result.error).toMatchObject({ code: 'unauthorized', hostname: 'shop.example.test' });
    expect(result.error.message).toContain('did not get the expected TLS-ALPN-01 answer');
    expect(result.error.message).not.toContain('HTTP-01');
  });

  it('says which types it answers and which the CA offers when none match, and gives the authorization back', async () => {
    const result = await validation(['tls-alpn-01', 'http-01'], ['dns-01']);
    expect(result.error).toMatchObject({
      code: 'rejected_identifier',
      retryable: false,
      hostname: 'shop.example.test',
    });
    expect(result.error.message).toBe(
      'The CA offers none of the configured challenge types for shop.example.test: Portico answers ' +
        'tls-alpn-01, http-01 (PORTICO_ACME_CHALLENGE) and the CA offers dns-01.',
    );
    expect(result.answered).toEqual([]);
    expect(result.puts).toEqual([]);
    // Read once (POST-as-GET), then deactivated so it does not count against the CA's pending limit.
    expect(result.posts).toEqual([
      { url: '/authz/1', payload: '' },
      { url: '/authz/1', payload: { status: 'deactivated' } },
    ]);
  });

  it('surfaces a rate limit at once with the CA’s Retry-After instead of sleeping through it', async () => {
    const error = await attempt({
      status: 429,
      body: problem('rateLimited', 'too many certificates already issued for "example.test"'),
      headers: { 'retry-after': '3600' },
    });
    expect(error).toMatchObject({ code: 'rate_limited', retryable: true, retryAfterSeconds: 3600 });
    expect(error.message).toContain('too many certificates');
    expect(error.message).toContain('3600 s');
    expect(orderRequests).toBe(1);
  });

  it('reads Retry-After given as an HTTP date', async () => {
    const inTwoMinutes = new Date(Date.now() + 120_000).toUTCString();
    const error = await attempt({
      status: 429,
      body: problem('rateLimited', 'slow down'),
      headers: { 'retry-after': inTwoMinutes },
    });
    expect(error.retryAfterSeconds).toBeGreaterThan(100);
    expect(error.retryAfterSeconds).toBeLessThanOrEqual(120);
  });

  it('names the CAA record to fix, with the CA’s own CAA identity', async () => {
    const error = await attempt({
      status: 403,
      body: problem('caa', 'CAA record for shop.example.test prevents issuance'),
    });
    expect(error).toMatchObject({
      code: 'caa_forbidden',
      retryable: false,
      problemType: expect.stringMatching(/caa$/),
    });
    expect(error.message).toContain('CAA record for shop.example.test prevents issuance');
    expect(error.message).toContain('shop.example.test CAA 0 issue "ca.example"');
  });

  it('reports every name of a compound rejection', async () => {
    const error = await attempt(
      {
        status: 400,
        body: problem('rejectedIdentifier', 'Cannot issue for 2 identifiers', {
          subproblems: [
            problem('rejectedIdentifier', 'high risk name', {
              identifier: { type: 'dns', value: 'a.example.test' },
            }),
            problem('rejectedIdentifier', 'blocked name', {
              identifier: { type: 'dns', value: 'b.example.test' },
            }),
          ],
        }),
      },
      ['a.example.test', 'b.example.test'],
    );
    expect(error).toMatchObject({
      code: 'rejected_identifier',
      retryable: false,
      hostname: 'a.example.test',
    });
    expect(error.message).toContain('a.example.test');
    expect(error.message).toContain('b.example.test');
    expect(error.message).toContain('blocked name');
  });

  it.each([
    [{ status: 500, body: problem('serverInternal', 'database down') }, 'server_error', true],
    [{ status: 503 }, 'server_error', true],
    [{ status: 400, body: problem('badNonce', 'JWS has an invalid anti-replay nonce') }, 'bad_nonce', true],
    [{ status: 400, body: problem('malformed', 'unexpected field') }, 'unknown', true],
    [{ status: 429 }, 'rate_limited', true],
    [
      { status: 400, body: problem('dns', 'SERVFAIL looking up A for shop.example.test') },
      'dns_problem',
      false,
    ],
    [{ status: 400, body: problem('connection', 'Connection refused') }, 'challenge_failed', false],
    [{ status: 403, body: problem('unauthorized', 'Invalid response: 404') }, 'unauthorized', false],
  ] as const)('classifies %j as %s', async (answer, code, retryable) => {
    const error = await attempt(answer);
    expect(error).toMatchObject({ code, retryable });
    expect(error.message).toMatch(/placing the order|CA/);
  });
});
