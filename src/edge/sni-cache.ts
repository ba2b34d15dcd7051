import { createHash } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import { normalizeHostname } from '../domain/hostname.js';
import { LoadingCache } from './loading-cache.js';
import type { CertificateSource } from './sources.js';

/**
 * What one cached certificate is counted as against the cache's memory budget, besides the length
 * of its PEM (chain and key): its TLS context, which OpenSSL allocates outside the JavaScript heap,
 * where nothing can weigh it object by object. Its real cost depends on the runtime's OpenSSL: a
 * process holding 1,000 contexts grew by about 29 KiB each on Node 20 (OpenSSL 3.0) and 40 KiB on
 * Node 24 (3.5), and an edge by 30 and 42-48 KiB per certificate it cached (with the name's route
 * and what its first visit left). This is above both, so the budget bounds real memory on either;
 * `npm run bench:edge` measures them on each runtime and checks it still is.
 */
export const CONTEXT_BYTES = 60 * 1024;

/**
 * The cache's memory budget unless told otherwise (`PORTICO_EDGE_CERT_CACHE_MB`), about 500
 * certificates: sized from an edge process's memory target, under 200 MB (docs/operations.md).
 */
export const DEFAULT_CERT_CACHE_MB = 32;

/** What a certificate counts as against the cache's budget (`maxBytes`), in bytes. */
export function certificateCacheBytes(certificate: {
  certificatePem: string;
  privateKeyPem: string;
}): number {
  return CONTEXT_BYTES + certificate.certificatePem.length + certificate.privateKeyPem.length;
}

export interface SniCacheOptions {
  certificates: CertificateSource;
  /**
   * The memory the cached certificates may take together, in bytes, each counted by
   * `certificateCacheBytes` (least recently used evicted first). Default DEFAULT_CERT_CACHE_MB MiB.
   */
  maxBytes?: number;
  /** Names remembered as having no certificate, at most (oldest forgotten first). Default 10,000. */
  maxNegativeEntries?: number;
  /** How long a loaded certificate is used before it is read again, in ms. Default 60,000. */
  ttlMs?: number;
  /** How long "no certificate for this name" is remembered, in ms. Default 5,000. */
  negativeTtlMs?: number;
  /**
   * How long before its expiry a certificate still in use is read again in the background, in
   * ms, so handshakes for a name in steady use never wait for the store. Default: a tenth of `ttlMs`.
   */
  refreshAheadMs?: number;
  /** Called each time a TLS context is built: a cache hit or an unchanged reload builds none. */
  onContextBuilt?(): void;
  /** Called once per failed certificate read (the source threw or the PEM did not parse). */
  onLoadError?(hostname: string, error: unknown): void;
  now?(): number;
}

/** Node's `SNICallback`: hands TLS the context for a servername, or none. */
export type SniCallback = (
  servername: string,
  callback: (error: Error | null, context?: SecureContext) => void,
) => void;

interface LoadedCertificate {
  readonly context: SecureContext;
  /** The leaf's `notAfter`, ms since the epoch. */
  readonly notAfter: number;
  /** SHA-256 of the chain's PEM: a reload that finds the same chain keeps `context`. */
  readonly fingerprint: string;
  /** What it counts as against the cache's budget (`certificateCacheBytes`). */
  readonly bytes: number;
  /** The source's cap on how long it is kept (`EdgeCertificate.maxAgeMs`), in ms. */
  readonly maxAgeMs: number;
}

/**
 * The TLS certificate for each SNI name, loaded on the first handshake that asks for it.
 *
 * A name that is not served gets no certificate at all: the callback answers with no context and
 * the server, which has no default certificate, fails the handshake with a `handshake_failure`
 * alert. So no tenant's certificate is ever shown for a name it was not issued for, and no fallback
 * certificate tells a scanner which platform answers at the address; Cloudflare and Vercel
 * effectively do the same for names they do not serve. A client that sends no SNI at all is refused
 * the same way (Node does not call the callback; the default context has no certificate). When the
 * source fails and nothing is cached, the handshake is aborted with that error (a TCP reset).
 *
 * A certificate is cached at most until its `notAfter`, so a renewal that missed its invalidation
 * is picked up at expiry at the latest; an already expired one is read again every `negativeTtlMs`.
 */
export class SniCache {
  private readonly cache: LoadingCache<LoadedCertificate>;
  private readonly certificates: CertificateSource;
  private readonly onContextBuilt: (() => void) | undefined;
  /**
   * The contexts the cache holds, by the fingerprint of their chain, with how many names hold each:
   * names served by one certificate (every name under a customer's wildcard claim, each cached by
   * its own name) share one context rather than each building its own (1 ms of OpenSSL parsing,
   * tens of KiB outside the heap). A context is forgotten with the last name holding it. Each name
   * still counts it against the budget, which so stays an upper bound.
   */
  private readonly contexts = new Map<string, { context: SecureContext; holders: number }>();

  constructor(options: SniCacheOptions) {
    this.certificates = options.certificates;
    this.onContextBuilt = options.onContextBuilt;
    const negativeTtlMs = options.negativeTtlMs ?? 5_000;
    const ttlMs = options.ttlMs ?? 60_000;
    this.cache = new LoadingCache<LoadedCertificate>({
      load: (hostname, previous) => this.load(hostname, previous),
      maxBytes: options.maxBytes ?? DEFAULT_CERT_CACHE_MB * 2 ** 20,
      sizeOf: (loaded) => loaded.bytes,
      maxNegativeEntries: options.maxNegativeEntries ?? 10_000,
      ttlMs,
      negativeTtlMs,
      refreshAheadMs: options.refreshAheadMs ?? ttlMs / 10,
      maxAgeOf: (loaded, now) => Math.min(Math.max(loaded.notAfter - now, negativeTtlMs), loaded.maxAgeMs),
      onLoadError: options.onLoadError,
      onStored: (_hostname, loaded) => {
        const held = this.contexts.get(loaded.fingerprint);
        if (held?.context === loaded.context) held.holders++;
        else this.contexts.set(loaded.fingerprint, { context: loaded.context, holders: 1 });
      },
      onDropped: (_hostname, loaded) => {
        const held = this.contexts.get(loaded.fingerprint);
        if (held?.context === loaded.context && --held.holders === 0)
          this.contexts.delete(loaded.fingerprint);
      },
      now: options.now,
    });
  }

  /** For `tls.createServer({ SNICallback })`. Answers synchronously when the name is cached. */
  readonly callback: SniCallback = (servername, callback) => {
    const cached = this.cache.get(normalizeHostname(servername));
    if (cached instanceof Promise) {
      cached.then(
        (loaded) => callback(null, loaded?.context),
        (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
      );
    } else {
      callback(null, cached?.context);
    }
  };

  /** Forgets one name's certificate (or its absence): the next handshake reads the source. */
  invalidate(hostname: string): void {
    this.cache.invalidate(normalizeHostname(hostname));
  }

  /** Forgets every name `matches` accepts (LoadingCache.invalidateMatching). */
  invalidateMatching(matches: (hostname: string) => boolean): void {
    this.cache.invalidateMatching(matches);
  }

  /** Makes every certificate stale: read again on its next handshake, kept if that read fails. */
  expireAll(): void {
    this.cache.expireAll();
  }

  /** Forgets every name. */
  clear(): void {
    this.cache.clear();
  }

  private async load(
    hostname: string,
    previous: LoadedCertificate | undefined,
  ): Promise<LoadedCertificate | undefined> {
    const found = await this.certificates.certificate(hostname);
    if (found === undefined) return undefined;
    const fingerprint = createHash('sha256').update(found.certificatePem).digest('base64');
    const notAfter = found.notAfter.getTime();
    // Building a context (OpenSSL parsing the PEM chain and key) costs about 1 ms here, twice a whole
    // handshake: a reload that finds the certificate unchanged, the usual case, keeps the one it has.
    const maxAgeMs = found.maxAgeMs ?? Number.POSITIVE_INFINITY;
    if (previous?.fingerprint === fingerprint) return { ...previous, notAfter, maxAgeMs };
    const bytes = certificateCacheBytes(found);
    const shared = this.contexts.get(fingerprint);
    if (shared !== undefined) return { context: shared.context, notAfter, fingerprint, bytes, maxAgeMs };
    const context = createSecureContext({ cert: found.certificatePem, key: found.privateKeyPem });
    this.onContextBuilt?.();
    return { context, notAfter, fingerprint, bytes, maxAgeMs };
  }
}
