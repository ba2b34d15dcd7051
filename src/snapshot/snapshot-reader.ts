import { closeSync, statSync } from 'node:fs';
import { coveringWildcard, isWildcard } from '../domain/hostname.js';
import { type Route, routeUnderWildcard } from '../domain/serving.js';
import type { Logger } from '../logger.js';
import type { SecretBox } from '../secrets/secret-box.js';
import {
  emptyRoutes,
  type OpenedSnapshot,
  openSnapshot,
  readCertificateRecord,
  SnapshotError,
  type SnapshotIndex,
} from './snapshot-file.js';

/** How often the file is looked at again for a newer snapshot (one `stat`), at most. */
const RECHECK_MS = 1_000;

export interface SnapshotReaderOptions {
  /** The snapshot file (`snapshotFile(dataDir)`). */
  file: string;
  /** Opens the sealed keys: the same key as the store's (PORTICO_ENCRYPTION_KEY or the data directory's). */
  box: SecretBox;
  /** PORTICO_EDGE_SNAPSHOT_MAX_AGE_SECONDS, in ms: an older snapshot is not served. */
  maxAgeMs: number;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  now?: () => number;
}

/** Where an edge serves from, for `/readyz`. */
export interface SnapshotState {
  /** Since when answers come from the snapshot because the store failed; undefined while the store answers. */
  servingSince: Date | undefined;
  /** When the snapshot in use was taken (the store last known to agree with it). */
  takenAt: Date | undefined;
}

interface Loaded extends OpenedSnapshot {
  /**
   * The routes, kept compact rather than as the index's arrays (100,000 names: about 7 MB less of
   * the edge's 200 MB): hostname → its place, and by place its app, certificate and redirect.
   */
  byName: Map<string, number>;
  appOf: Int32Array;
  /** -1: no certificate of its own. */
  certOf: Int32Array;
  /** The few routes that redirect (to their app's primary domain), by place. */
  redirects: Map<number, string>;
  takenAtMs: number;
  /** The file's identity when opened: a new snapshot is a new inode (written beside, then renamed). */
  ino: number;
  mtimeMs: number;
}

/**
 * The node's snapshot, as the edge serves from it when the store cannot answer (and
 * `/v1/edge/ask` answers from it then): opened on first use, looked at again at most once a
 * second for a newer one, its certificates read from the file one at a time when asked for.
 *
 * A throw from `route` or `certificate` means there is no snapshot to serve: none yet, damaged
 * (said once in the log, with why), or older than the maximum age. An unusable snapshot is never
 * half-served.
 */
export class SnapshotReader {
  private loaded: Loaded | undefined;
  private checkedAt = Number.NEGATIVE_INFINITY;
  /** Why the file could not be loaded, when it could not. */
  private refusal: string | undefined;
  /** The last reason logged: each is logged once until it changes. */
  private logged: string | undefined;
  private servingSince: number | undefined;
  private readonly now: () => number;

  constructor(private readonly options: SnapshotReaderOptions) {
    this.now = options.now ?? Date.now;
  }

  /**
   * The route the snapshot holds for a normalized hostname, or undefined; marks the edge as serving
   * from it. As `routeOf` answers: the name's own entry, else the entry of the wildcard claim one
   * label above it (kept under `*.acme.com`), with `wildcard` set so its certificate is asked for by
   * that name; never one for `*.acme.com` itself.
   */
  route(hostname: string): Route | undefined {
    const loaded = this.usable();
    this.servingSince ??= this.now();
    if (isWildcard(hostname)) return undefined;
    const own = entry(loaded, hostname);
    if (own) return own;
    const wildcard = coveringWildcard(hostname);
    const covering = wildcard === undefined ? undefined : entry(loaded, wildcard);
    return covering && routeUnderWildcard(covering, hostname);
  }

  /**
   * The certificate to present for a normalized hostname that has an entry of its own (a wildcard
   * claim's by its name, `*.acme.com`, as the edge asks for it), its key opened; or undefined.
   */
  certificate(
    hostname: string,
  ): { certificatePem: string; privateKeyPem: string; notAfter: Date } | undefined {
    const loaded = this.usable();
    const at = loaded.byName.get(hostname);
    const certIndex = at === undefined ? -1 : (loaded.certOf[at] ?? -1);
    const entry = loaded.index.certificates[certIndex];
    if (entry === undefined) return undefined;
    const [, offset, length, hash, notAfter] = entry;
    const record = readCertificateRecord(loaded.fd, offset, length, hash);
    return {
      certificatePem: record.certificatePem,
      privateKeyPem: this.options.box.open(record.privateKeyEnc),
      notAfter: new Date(notAfter),
    };
  }

  /** The store answered: the edge no longer serves from the snapshot. */
  storeAnswered(): void {
    this.servingSince = undefined;
  }

  state(): SnapshotState {
    return {
      servingSince: this.servingSince === undefined ? undefined : new Date(this.servingSince),
      takenAt: this.loaded ? new Date(this.loaded.takenAtMs) : undefined,
    };
  }

  close(): void {
    if (this.loaded) closeSync(this.loaded.fd);
    this.loaded = undefined;
  }

  /** The snapshot to answer from, reloaded when a newer one was written; throws when there is none to serve. */
  private usable(): Loaded {
    const now = this.now();
    if (now - this.checkedAt >= RECHECK_MS) {
      this.checkedAt = now;
      this.reloadIfChanged();
    }
    const loaded = this.loaded;
    if (!loaded) throw this.refuse(this.refusal ?? 'no edge snapshot');
    const age = now - loaded.takenAtMs;
    if (age > this.options.maxAgeMs) {
      throw this.refuse(
        `the edge snapshot was taken ${Math.round(age / 1000)} s ago, more than PORTICO_EDGE_SNAPSHOT_MAX_AGE_SECONDS (${Math.round(this.options.maxAgeMs / 1000)}): not served`,
      );
    }
    return loaded;
  }

  private reloadIfChanged(): void {
    let stat: { ino: number; mtimeMs: number };
    try {
      stat = statSync(this.options.file);
    } catch (error) {
      this.refusal = `no edge snapshot at ${this.options.file} (${(error as NodeJS.ErrnoException).code})`;
      return;
    }
    if (this.loaded && this.loaded.ino === stat.ino && this.loaded.mtimeMs === stat.mtimeMs) return;
    const started = performance.now();
    try {
      const opened = openSnapshot(this.options.file);
      const { names, apps, certificates, redirects } = opened.index.routes;
      const byName = new Map<string, number>();
      for (const [i, name] of names.entries()) byName.set(name, i);
      const appOf = Int32Array.from(apps);
      const certOf = Int32Array.from(certificates);
      const redirectOf = new Map(redirects);
      // The columns are garbage from here on: only the compact form above is kept.
      opened.index.routes = emptyRoutes();
      this.close();
      this.loaded = {
        ...opened,
        byName,
        appOf,
        certOf,
        redirects: redirectOf,
        takenAtMs: Date.parse(opened.index.takenAt),
        ino: stat.ino,
        mtimeMs: stat.mtimeMs,
      };
      this.refusal = undefined;
      this.options.logger.info(
        {
          file: this.options.file,
          names: byName.size,
          takenAt: opened.index.takenAt,
          ms: Math.round(performance.now() - started),
        },
        'edge: snapshot loaded',
      );
    } catch (error) {
      // A damaged file is not served, nor one it replaced: the writer replaced that for a reason.
      const reason =
        error instanceof SnapshotError || error instanceof SyntaxError
          ? error.message
          : `could not read ${this.options.file}: ${String(error)}`;
      this.refusal = `edge snapshot refused: ${reason}`;
      this.logged = this.refusal;
      this.options.logger.error({ file: this.options.file, reason }, 'edge: snapshot refused, not served');
      this.close();
    }
  }

  private refuse(reason: string): Error {
    if (reason !== this.logged) {
      this.logged = reason;
      this.options.logger.warn({ reason }, 'edge: no snapshot to serve from');
    }
    return new SnapshotError(reason);
  }
}

/** The route kept under `hostname` itself, as written (`*.acme.com` for a wildcard claim), or undefined. */
function entry(loaded: Loaded, hostname: string): Route | undefined {
  const at = loaded.byName.get(hostname);
  if (at === undefined) return undefined;
  const [appId, originUrl] = loaded.index.apps[loaded.appOf[at] ?? -1] as SnapshotIndex['apps'][number];
  const redirectTo = loaded.redirects.get(at);
  return { hostname, appId, originUrl, ...(redirectTo ? { redirectTo } : {}) };
}
