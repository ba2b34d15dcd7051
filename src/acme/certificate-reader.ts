import { appsWildcardHostname, slugOfHostname } from '../domain/serving.js';
import type { SecretBox } from '../secrets/secret-box.js';
import type { Store } from '../store/store.js';

/** A stored certificate ready to hand to TLS: the chain, its key unsealed, the leaf's expiry. */
export interface StoredCertificate {
  /** The leaf first, then the intermediates (PEM, concatenated). */
  certificatePem: string;
  /** PEM, decrypted. */
  privateKeyPem: string;
  notAfter: Date;
}

/**
 * The certificates in the store, as the edge serves them: read from the store, keys opened with
 * the secret box. It needs no issuer, so a node that issues nothing (`PORTICO_TLS_ISSUER=none`: an
 * edge-only node, or issuing stopped during a CA incident) still serves every certificate the store
 * holds. The issuing side is `CertificateService`; this is the only reader.
 */
export class CertificateReader {
  private readonly wildcardHostname: string;

  constructor(
    private readonly store: Store,
    private readonly box: SecretBox,
    private readonly appsDomain: string,
  ) {
    this.wildcardHostname = appsWildcardHostname(appsDomain);
  }

  /**
   * The certificate and key to serve for `hostname`, or undefined when there is none to serve: the
   * name's own, else, for an app's default hostname (one label under the apps domain), the apps
   * domain's wildcard. The wildcard is never looked up for customers' names, so no certificate of
   * the platform's is ever shown for a tenant's domain. Callers ask only for names that have a
   * route (the edge does), since the wildcard covers names no app has. A customer's wildcard claim
   * is asked for by its own name (`*.acme.com`), as the edge's route names it.
   */
  async certificate(hostname: string): Promise<StoredCertificate | undefined> {
    const own = await this.store.findCertificate(hostname);
    const record =
      own?.certificatePem || slugOfHostname(hostname, this.appsDomain) === undefined
        ? own
        : await this.store.findCertificate(this.wildcardHostname);
    if (!record?.certificatePem || !record.privateKeyEnc || !record.notAfter) return undefined;
    return {
      certificatePem: record.certificatePem,
      privateKeyPem: this.box.open(record.privateKeyEnc),
      notAfter: new Date(record.notAfter),
    };
  }
}
