import type { CertificateReader, SealedCertificate } from '../acme/certificate-reader.js';
import { isWildcard } from '../domain/hostname.js';
import { type Route, routeOf, servedRoutes, wildcardRouteOf } from '../domain/serving.js';
import type { Logger } from '../logger.js';
import { ALL_HOSTNAMES, type Store } from '../store/store.js';
import {
  certificateRecord,
  emptyRoutes,
  type Placement,
  RECORDS_START,
  SnapshotBuilder,
  type SnapshotIndex,
} from './snapshot-file.js';

/** Certificates read per query by a full rebuild. */
const PAGE = 500;

export interface SnapshotWriterOptions {
  store: Store;
  appsDomain: string;
  /** Chooses each name's certificate as the edge does (its key stays sealed). */
  certificates: CertificateReader;
  /** The snapshot file (`snapshotFile(dataDir)`). */
  file: string;
  logger: Logger;
  /** How long after a change the snapshot is written, gathering the changes that follow, in ms. Default 1,000. */
  debounceMs?: number;
  /**
   * How often, with no change, the snapshot is written again (after the store answers a ping), so
   * its age says how long ago the store last agreed with it, in ms. Default 5 minutes.
   */
  refreshMs?: number;
  /** How often it is rebuilt from the whole store, a backstop for a change missed, in ms. Default 1 hour. */
  rebuildMs?: number;
  /** After a failure (the store down), the next try, in ms. Default 5,000. */
  retryMs?: number;
  now?: () => number;
}

interface CertificateEntry extends Placement {
  /** The certificate's own hostname. */
  hostname: string;
  notAfter: string;
}

/**
 * Keeps the node's snapshot current: rebuilt from the whole store at start, when the change feed
 * may have missed changes (a reconnected LISTEN says `ALL_HOSTNAMES`) and every `rebuildMs`;
 * between those, each announced change re-reads only the names it names, appends their certificate
 * records to the records file and writes a new index (unchanged records are never rewritten; a
 * rebuild, into a new records file, drops the dead ones once they are half of it).
 *
 * One writer per node: the process that holds the node's change feed (`portico serve`, the
 * primary when there are edge workers), so one file is written once per change, not raced by
 * every worker; the workers only read it (snapshot-reader.ts). Every write is atomic
 * (snapshot-file.ts). While the store cannot answer nothing is written: the snapshot keeps the
 * time it was last known current, and grows old (PORTICO_EDGE_SNAPSHOT_MAX_AGE_SECONDS).
 */
export class SnapshotWriter {
  // What the current file's index says, kept packed in strings: 100,000 names as objects took 65 MB
  // of heap, as strings about a third of it, in a process that may also be serving.
  /** `${appId} ${originUrl}` → its place in `apps`. */
  private readonly appSlots = new Map<string, number>();
  private readonly apps: SnapshotIndex['apps'] = [];
  /** hostname → `${app slot}\n${redirectTo or ''}`. */
  private readonly routes = new Map<string, string>();
  /** hostname → the hostname of the certificate it is served: '' for its own, else another's (the apps' wildcard). */
  private readonly routeCertificate = new Map<string, string>();
  /** certificate hostname → `${offset}\n${length}\n${sha256}\n${notAfter}`: where its record is in the current file. */
  private readonly certificates = new Map<string, string>();
  /** The current snapshot: its records file, where its records end, and how many of their bytes no entry points to. */
  private current: { records: string; bodyEnd: number; dead: number } | undefined;
  private readonly pending = new Set<string>();
  private rebuildNeeded = true;
  private lastRebuild = Number.NEGATIVE_INFINITY;
  private lastWrite = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  /** When `timer` fires (ms since the epoch). */
  private timerAt = Number.POSITIVE_INFINITY;
  private running: Promise<void> | undefined;
  private unsubscribe: (() => void) | undefined;
  private stopped = false;
  private failing = false;
  private readonly now: () => number;
  private readonly debounceMs: number;
  private readonly refreshMs: number;
  private readonly rebuildMs: number;
  private readonly retryMs: number;

  constructor(private readonly options: SnapshotWriterOptions) {
    this.now = options.now ?? Date.now;
    this.debounceMs = options.debounceMs ?? 1_000;
    this.refreshMs = options.refreshMs ?? 5 * 60_000;
    this.rebuildMs = options.rebuildMs ?? 60 * 60_000;
    this.retryMs = options.retryMs ?? 5_000;
  }

  /** Subscribes to the change feed and writes the first snapshot at once. */
  start(): void {
    this.unsubscribe = this.options.store.subscribeServingChanges((hostname) => this.changed(hostname));
    this.schedule(0);
  }

  /** One announced change (`ALL_HOSTNAMES`: rebuild from the whole store). */
  changed(hostname: string): void {
    if (hostname === ALL_HOSTNAMES) this.rebuildNeeded = true;
    else this.pending.add(hostname);
    this.schedule(this.debounceMs);
  }

  /** Runs what is due now and waits for it (tests, the benchmark). */
  async flush(): Promise<void> {
    await this.running;
    await this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    const at = this.now() + delayMs;
    // An earlier tick stays (changes gather until it runs); a later one (the periodic refresh) gives way.
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      void this.run();
    }, delayMs);
    this.timer.unref();
  }

  private run(): Promise<void> {
    if (this.running) return this.running;
    const run = this.work().finally(() => {
      this.running = undefined;
      if (this.stopped) return;
      if (this.failing) this.schedule(this.retryMs);
      else if (this.pending.size > 0 || this.rebuildNeeded) this.schedule(this.debounceMs);
      else
        this.schedule(Math.max(0, Math.min(this.refreshMs, this.rebuildMs) - (this.now() - this.lastWrite)));
    });
    this.running = run;
    return run;
  }

  private async work(): Promise<void> {
    const startedAt = this.now();
    try {
      if (
        this.rebuildNeeded ||
        startedAt - this.lastRebuild >= this.rebuildMs ||
        this.current === undefined
      ) {
        // Changes announced from here on are read again after it: its reads may precede them.
        this.rebuildNeeded = false;
        this.pending.clear();
        await this.rebuild(startedAt);
      } else if (this.pending.size > 0) {
        const names = [...this.pending];
        this.pending.clear();
        try {
          await this.update(names, startedAt);
        } catch (error) {
          for (const name of names) this.pending.add(name);
          throw error;
        }
      } else if (startedAt - this.lastWrite >= this.refreshMs) {
        // Nothing changed: the store answering says the snapshot is still current.
        await this.options.store.ping();
        this.write([], startedAt);
      }
      if (this.failing) this.options.logger.info('edge: snapshot writing resumed');
      this.failing = false;
    } catch (error) {
      if (!this.failing) {
        this.options.logger.warn({ err: error }, 'edge: could not update the snapshot; trying again');
      }
      this.failing = true;
      if (this.current === undefined) this.rebuildNeeded = true;
    }
  }

  /** Every route and certificate, read from the store a page at a time, into a new file. */
  private async rebuild(startedAt: number): Promise<void> {
    const { store, certificates } = this.options;
    const routes = await servedRoutes(store, this.options.appsDomain);
    // The certificates a route may be served: each name's own (a wildcard claim's, `*.acme.com`,
    // under its route's name) and the apps' wildcard.
    const wanted = new Set(routes.map((route) => route.hostname));
    wanted.add(`*.${this.options.appsDomain}`);
    const builder = new SnapshotBuilder(this.options.file);
    const placed = new Map<string, CertificateEntry>();
    try {
      for (let after = ''; ; ) {
        const page = await store.listServableCertificates(after, PAGE);
        for (const record of page) {
          if (!wanted.has(record.hostname) || !record.certificatePem || !record.privateKeyEnc) continue;
          const placement = builder.append(certificateRecord(record.privateKeyEnc, record.certificatePem));
          placed.set(record.hostname, {
            ...placement,
            hostname: record.hostname,
            notAfter: record.notAfter ?? '',
          });
        }
        if (page.length < PAGE) break;
        after = page.at(-1)?.hostname ?? '';
      }
      this.routes.clear();
      this.routeCertificate.clear();
      this.certificates.clear();
      this.apps.length = 0;
      this.appSlots.clear();
      for (const route of routes) {
        this.setRoute(route);
        const chosen = certificates.choose(route.hostname, placed);
        if (chosen) this.setCertificate(route.hostname, chosen);
      }
      const written = builder.finish(this.index(startedAt));
      let used = 0;
      for (const packed of this.certificates.values()) used += unpack(packed).length;
      this.current = {
        records: written.records,
        bodyEnd: written.bodyEnd,
        dead: written.bodyEnd - RECORDS_START - used,
      };
      this.lastRebuild = startedAt;
      this.lastWrite = startedAt;
      this.options.logger.info(
        {
          names: routes.length,
          certificates: this.certificates.size,
          bytes: written.bytes,
          ms: this.now() - startedAt,
        },
        'edge: snapshot rebuilt',
      );
    } catch (error) {
      builder.abort();
      throw error;
    }
  }

  /** Re-reads the names a change announced and writes the snapshot with them. */
  private async update(names: string[], startedAt: number): Promise<void> {
    const { certificates } = this.options;
    const read: { name: string; route: Route | undefined; sealed: SealedCertificate | undefined }[] = [];
    for (const name of names) {
      const route = await this.entryOf(name);
      if (!route && this.isSharedCertificate(name)) {
        // A certificate several names are served (the apps' wildcard) changed: simplest read again whole.
        this.rebuildNeeded = true;
        return;
      }
      read.push({ name, route, sealed: route && (await certificates.sealed(name)) });
    }
    const records: Buffer[] = [];
    for (const { sealed } of read) {
      if (sealed) records.push(certificateRecord(sealed.privateKeyEnc, sealed.certificatePem));
    }
    this.write(records, startedAt, (placements) => {
      let next = 0;
      for (const { name, route, sealed } of read) {
        this.routes.delete(name);
        this.routeCertificate.delete(name);
        if (!route) continue;
        this.setRoute(route);
        if (!sealed) continue;
        const placement = placements[next++] as Placement;
        const previous = this.certificates.get(sealed.hostname);
        if (previous !== undefined && this.current) this.current.dead += unpack(previous).length;
        this.setCertificate(name, { ...placement, hostname: sealed.hostname, notAfter: sealed.notAfter });
      }
      this.dropUnused();
    });
    if (this.current && this.current.dead > this.current.bodyEnd / 2) this.rebuildNeeded = true;
  }

  /**
   * The route the snapshot keeps under `name`, as `servedRoutes` lists it: a name's own route; a
   * wildcard claim's own (`wildcardRouteOf`: its change, or its certificate's, is announced by its
   * name, `*.acme.com`); none for a name a wildcard serves, which the reader answers from the
   * wildcard's entry (with the wildcard's certificate) once its own entry is gone.
   */
  private async entryOf(name: string): Promise<Route | undefined> {
    const { store, appsDomain } = this.options;
    if (isWildcard(name)) return wildcardRouteOf(store, appsDomain, name);
    const route = await routeOf(store, appsDomain, name);
    return route?.wildcard === undefined ? route : undefined;
  }

  private setRoute(route: Route): void {
    const key = `${route.appId} ${route.originUrl}`;
    let slot = this.appSlots.get(key);
    if (slot === undefined) {
      slot = this.apps.length;
      this.appSlots.set(key, slot);
      this.apps.push([route.appId, route.originUrl]);
    }
    this.routes.set(route.hostname, `${slot}\n${route.redirectTo ?? ''}`);
  }

  /** `hostname` is served `entry` (its own certificate, or another's). */
  private setCertificate(hostname: string, entry: CertificateEntry): void {
    const own = entry.hostname === hostname;
    // An own certificate is keyed by the route's own string: one string for both maps.
    this.certificates.set(own ? hostname : entry.hostname, pack(entry));
    this.routeCertificate.set(hostname, own ? '' : entry.hostname);
  }

  /** Whether `name` is a certificate that some other name is served (it has no route of its own). */
  private isSharedCertificate(name: string): boolean {
    if (!this.certificates.has(name)) return false;
    for (const certificate of this.routeCertificate.values()) if (certificate === name) return true;
    return false;
  }

  /** Forgets certificate entries no route points to any more (their bytes are dead until a rebuild). */
  private dropUnused(): void {
    const used = new Set<string>();
    for (const [hostname, certificate] of this.routeCertificate) used.add(certificate || hostname);
    for (const [name, packed] of this.certificates) {
      if (used.has(name)) continue;
      this.certificates.delete(name);
      if (this.current) this.current.dead += unpack(packed).length;
    }
  }

  /** Appends `records` to the current records file and writes a new index; `apply` updates the entries once they are placed. */
  private write(records: Buffer[], takenAt: number, apply?: (placements: Placement[]) => void): void {
    const current = this.current;
    if (!current) throw new Error('no snapshot to update');
    const builder = new SnapshotBuilder(this.options.file, {
      records: current.records,
      bodyEnd: current.bodyEnd,
    });
    try {
      const placements = records.map((record) => builder.append(record));
      apply?.(placements);
      const written = builder.finish(this.index(takenAt));
      current.bodyEnd = written.bodyEnd;
      this.lastWrite = takenAt;
    } catch (error) {
      builder.abort();
      // What is in memory may now differ from the file: the next run starts over from the store.
      this.rebuildNeeded = true;
      throw error;
    }
  }

  /** The index of what is in memory now, in the file's compact form. */
  private index(takenAt: number): Omit<SnapshotIndex, 'records'> {
    const certificates: SnapshotIndex['certificates'] = [];
    const certificateIndex = new Map<string, number>();
    for (const [name, packed] of this.certificates) {
      const entry = unpack(packed);
      certificateIndex.set(name, certificates.length);
      certificates.push([name, entry.offset, entry.length, entry.sha256, entry.notAfter]);
    }
    const routes = emptyRoutes();
    for (const [hostname, packed] of this.routes) {
      const newline = packed.indexOf('\n');
      const redirectTo = packed.slice(newline + 1);
      const certificate = this.routeCertificate.get(hostname);
      if (redirectTo) routes.redirects.push([routes.names.length, redirectTo]);
      routes.names.push(hostname);
      routes.apps.push(Number(packed.slice(0, newline)));
      routes.certificates.push(
        certificate === undefined ? -1 : (certificateIndex.get(certificate || hostname) ?? -1),
      );
    }
    // Apps no route points to any more stay listed until the next rebuild: a few bytes each.
    return { takenAt: new Date(takenAt).toISOString(), apps: this.apps, certificates, routes };
  }
}

function pack(entry: Omit<CertificateEntry, 'hostname'>): string {
  return `${entry.offset}\n${entry.length}\n${entry.sha256}\n${entry.notAfter}`;
}

function unpack(packed: string): Omit<CertificateEntry, 'hostname'> {
  const [offset, length, sha256, notAfter] = packed.split('\n');
  return { offset: Number(offset), length: Number(length), sha256: sha256 ?? '', notAfter: notAfter ?? '' };
}
