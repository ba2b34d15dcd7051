import * as x509 from '@peculiar/x509';
import { CertIssueError } from './issuer.js';

/*
 * ACME Renewal Information (ARI, RFC 9773), the part of it that needs no HTTP: the certificate's
 * identifier in ARI requests and in a new order's `replaces`, and reading the CA's answer. The
 * requests themselves go through acme-client in acme-issuer.ts (docs/architecture.md, "The ACME
 * library").
 */

const AUTHORITY_KEY_IDENTIFIER = '2.5.29.35';

/**
 * The ARI certificate identifier (RFC 9773 section 4.1): base64url of the keyIdentifier of the
 * certificate's Authority Key Identifier extension, a dot, base64url of the DER bytes of its serial
 * number (the INTEGER's content octets: a leading zero byte when the top bit is set, as DER keeps
 * it). The CA finds the certificate by it; `replaces` names the certificate a new order replaces.
 */
export function ariCertId(certificatePem: string): string {
  const leaf = new x509.X509Certificate(firstPem(certificatePem));
  const aki = leaf.getExtension<x509.AuthorityKeyIdentifierExtension>(AUTHORITY_KEY_IDENTIFIER);
  if (!aki?.keyId) {
    throw new CertIssueError(
      'unknown',
      'The certificate has no Authority Key Identifier: ACME Renewal Information cannot name it.',
    );
  }
  return certIdOf(Buffer.from(aki.keyId, 'hex'), serialDer(leaf.serialNumber));
}

/** `ariCertId` from its two parts, as bytes. */
export function certIdOf(keyIdentifier: Uint8Array, serialDerBytes: Uint8Array): string {
  return `${Buffer.from(keyIdentifier).toString('base64url')}.${Buffer.from(serialDerBytes).toString('base64url')}`;
}

/** The DER content octets of a serial number given in hex (with or without leading zeros). */
export function serialDer(serialHex: string): Uint8Array {
  const hex = serialHex.replace(/[^0-9a-f]/gi, '');
  let bytes = Buffer.from(hex.length % 2 === 1 ? `0${hex}` : hex, 'hex');
  // Minimal: no leading zero byte unless the next one's top bit is set (which would read as negative).
  while (bytes.length > 1 && bytes[0] === 0 && ((bytes[1] as number) & 0x80) === 0) bytes = bytes.subarray(1);
  if (bytes.length === 0) return Uint8Array.of(0);
  return (bytes[0] as number) & 0x80 ? Buffer.concat([Buffer.of(0), bytes]) : bytes;
}

/** What the CA says of one certificate's renewal (RFC 9773 section 4.2). */
export interface RenewalInfo {
  /** The certificate's ARI identifier (`ariCertId`), which a replacing order names in `replaces`. */
  certId: string;
  /** Renew at a moment of this window; one ending in the past means now. */
  window: { start: Date; end: Date };
  /** When to ask again (Retry-After), in seconds; the caller bounds it (`ariPollSeconds`). */
  retryAfterSeconds?: number;
  /** A page the CA gives to explain an unusual window (a revocation, an incident). */
  explanationUrl?: string;
}

/** Reads the body of a renewalInfo answer, or fails as the CA's fault (`server_error`). */
export function parseRenewalInfo(
  certId: string,
  body: unknown,
  retryAfterSeconds: number | undefined,
): RenewalInfo {
  const info = body as { suggestedWindow?: { start?: unknown; end?: unknown }; explanationURL?: unknown };
  const start =
    typeof info?.suggestedWindow?.start === 'string' ? Date.parse(info.suggestedWindow.start) : NaN;
  const end = typeof info?.suggestedWindow?.end === 'string' ? Date.parse(info.suggestedWindow.end) : NaN;
  // RFC 9773 section 4.2: a window whose end is not after its start is invalid, to be ignored.
  if (Number.isNaN(start) || Number.isNaN(end) || end <= start) {
    throw new CertIssueError(
      'server_error',
      'The CA answered ACME Renewal Information without a valid suggestedWindow.',
    );
  }
  return {
    certId,
    window: { start: new Date(start), end: new Date(end) },
    retryAfterSeconds,
    explanationUrl: typeof info.explanationURL === 'string' ? info.explanationURL : undefined,
  };
}

/** The first PEM block of a chain: the leaf. */
function firstPem(chainPem: string): string {
  const end = '-----END CERTIFICATE-----';
  const at = chainPem.indexOf(end);
  return at === -1 ? chainPem : chainPem.slice(0, at + end.length);
}
