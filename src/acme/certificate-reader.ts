import type { SecretBox } from '../secrets/secret-box.js';
import type { Store } from '../store/store.js';

/** `*.{apps domain}`: one certificate for every app's default hostname, where the issuer can make it. */
export function appsWildcardHostname(appsDomain: string): string {
  return `*.${appsDomain}`;
}

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
  private readonly appsSuffix: string;

  constructor(
    private readonly store: Store,
    private readonly box: SecretBox,
    appsDomain: string,
  ) {
    this.wildcardHostname = appsWildcardHostname(appsDomain);
    this.appsSuffix = `.${appsDomain}`;
  }

  /**
   * The certificate and key to serve for `hostname`, or undefined when there is none to serve: the
   * name's own, else, for an app's default hostname (one label under the apps domain), the apps
   * domain's wildcard. The wildcard is never looked up for customers' names, so no certificate of
   * the platform's is ever shown for a tenant's domain. Callers ask only for names that have a
   * route (the edge does), since the wildcard covers names no app has.
   */
  async certificate(hostname: string): Promise<StoredCertificate | undefined> {
    const own = await this.store.findCertificate(hostname);
    const record =
      own?.certificatePem || !this.isDefaultHostname(hostname)
        ? own
        : await this.store.findCertificate(this.wildcardHostname);
    if (!record?.certificatePem || !record.privateKeyEnc || !record.notAfter) return undefined;
    return {
      certificatePem: record.certificatePem,
      privateKeyPem: this.box.open(record.privateKeyEnc),
      notAfter: new Date(record.notAfter),
    };
  }

  /** `{slug}.{apps domain}`: one label, directly under the apps domain. */
  private isDefaultHostname(hostname: string): boolean {
    if (!hostname.endsWith(this.appsSuffix)) return false;
    const label = hostname.slice(0, -this.appsSuffix.length);
    return label.length > 0 && !label.includes('.') && label !== '*';
  }
}
