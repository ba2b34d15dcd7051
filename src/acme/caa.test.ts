import { describe, expect, it } from 'vitest';
import { caaRefusal } from './caa.js';

/** What a failed CAA search tells the customer (certificate.last_error): the name that failed, and why. */
describe('caaRefusal of a failed search', () => {
  const LE = { identities: ['letsencrypt.org'] };

  it('names the CNAME target whose lookup failed, and a DNSSEC failure the resolver reported', () => {
    const refusal = caaRefusal(
      {
        ok: false,
        at: 'shop.acme.test',
        failure: 'servfail',
        cnameChain: ['shop.cdn.test'],
        extendedError: { infoCode: 6, text: 'signature expired' },
      },
      'shop.acme.test',
      LE,
    );
    expect(refusal?.code).toBe('caa_lookup_failed');
    expect(refusal?.message).toBe(
      'Could not read the CAA records of shop.acme.test: DNS answered SERVFAIL with Extended DNS Error 6 DNSSEC Bogus: "signature expired" for shop.cdn.test (the CNAME target of shop.acme.test). Its DNSSEC does not validate: every CA refuses the name until its DS record at the parent zone matches its keys and its signatures are current. No CA issues without reading them; this is tried again shortly.',
    );
  });

  it('names the name itself when its own lookup failed', () => {
    const refusal = caaRefusal(
      { ok: false, at: 'acme.test', failure: 'timeout', cnameChain: [] },
      'shop.acme.test',
      LE,
    );
    expect(refusal?.message).toBe(
      'Could not read the CAA records of shop.acme.test: DNS did not answer in time for acme.test. No CA issues without reading them; this is tried again shortly.',
    );
  });
});
