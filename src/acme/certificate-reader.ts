import { appsWildcardHostname, slugOfHostname } from '../domain/serving.js';
import type { SecretBox } from '../secrets/secret-box.js';
import type { CertificateRecord, Store } from '../store/store.js';

/** A stored certificate ready to hand to TLS: the chain, its key unsealed, the leaf's expiry. */
export interface StoredCertificate {
  /** The leaf first, then the intermediates (PEM, concatenated). */
  certificatePem: string;
  /** PEM, decrypted. */
  privateKeyPem: string;
  notAfter: Date;
}

/** A stored certificate that can be served: its chain, its key as the store keeps it (sealed), its expiry. */
export interface SealedCertificate {
  /** The certificate's own hostname (`*.{apps domain}` for the apps' wildcard). */
  hostname: string;
  certificatePem: string;
  privateKeyEnc: string;
  /** ISO 8601. */
  notAfter: string;
}

/** A record with all a served certificate needs, as a `SealedCertificate`; undefined otherwise. */
export function servable(record: CertificateRecord | undefined): SealedCertificate | undefined {
  if (!record?.certificatePem || !record.privateKeyEnc || !record.notAfter) return undefined;
  return {
    hostname: record.hostname,
    certificatePem: record.certificatePem,
    privateKeyEnc: record.privateKeyEnc,
    notAfter: record.notAfter,
  };
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
    const record = await this.sealed(hostname);
    return (
      record && {
        certificatePem: record.certificatePem,
        privateKeyPem: this.box.open(record.privateKeyEnc),
        notAfter: new Date(record.notAfter),
      }
    );
  }

  /**
   * The stored record `certificate()` serves for `hostname`, its key still sealed: what the edge's
   * snapshot keeps on disk (src/snapshot/), so a key is never written out in plain text.
   */
  async sealed(hostname: string): Promise<SealedCertificate | undefined> {
    const own = await this.store.findCertificate(hostname);
    return servable(
      own?.certificatePem || slugOfHostname(hostname, this.appsDomain) === undefined
        ? own
        : await this.store.findCertificate(this.wildcardHostname),
    );
  }

  /**
   * Which of `records` (found by their hostname) `certificate()` serves for `hostname`: the same
   * choice as `sealed`, for a caller that has read them all at once.
   */
  choose<T>(hostname: string, records: ReadonlyMap<string, T>): T | undefined {
    const own = records.get(hostname);
    return own || slugOfHostname(hostname, this.appsDomain) === undefined
      ? own
      : records.get(this.wildcardHostname);
  }
}
