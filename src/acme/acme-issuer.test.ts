import { describe, expect, it } from 'vitest';
import { AcmeIssuer } from './acme-issuer.js';
import { CertIssueError } from './issuer.js';

/**
 * What the ACME issuer refuses before it talks to any CA: the directory below is never contacted
 * (nothing listens there), so a refusal that got as far as the network would fail otherwise.
 * Issuance itself is tested against Pebble (test/integration/acme/).
 */
describe('AcmeIssuer before any order', () => {
  const issuer = (dns01: boolean) =>
    new AcmeIssuer({
      directoryUrl: 'https://127.0.0.1:9/directory',
      accountKeys: { get: async () => undefined, putIfAbsent: async (key) => key },
      challenges: { put: async () => {}, remove: async () => {} },
      challengeTypes: ['dns-01'],
      ...(dns01 ? { dnsChallenges: { put: async () => {}, remove: async () => {} } } : {}),
      requestTimeoutMs: 100,
    });

  it('refuses a wildcard without a delegation in place, saying what to create', async () => {
    const refusal = issuer(true).issue(['*.acme.com']);
    await expect(refusal).rejects.toBeInstanceOf(CertIssueError);
    await expect(refusal).rejects.toMatchObject({
      code: 'rejected_identifier',
      message: expect.stringContaining('_acme-challenge.acme.com is not delegated'),
    });
  });

  it('refuses a wildcard with a delegation when it has no challenge zone to write to', async () => {
    const refusal = issuer(false).issue(['*.acme.com'], { delegation: { label: 'abc', domainId: 'dom_1' } });
    await expect(refusal).rejects.toMatchObject({ code: 'rejected_identifier' });
  });
});
