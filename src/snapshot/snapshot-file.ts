import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { PRIVATE_FILE_MODE } from '../private-files.js';

/**
 * The edge's snapshot: what an edge node serves (every route, and the current certificate of each,
 * its key sealed as the store keeps it), so it can serve through a store outage and start while the
 * store is down (docs/operations.md, "When the store is down"). Two files in the data directory:
 *
 * ```
 * edge-snapshot.bin           the index, replaced as a whole on every write (temporary file, fsync, rename):
 *                             MAGIC (16 bytes), the index as JSON (apps, certificates with offset, length,
 *                             SHA-256 and expiry, routes, and which records file it reads how far),
 *                             FOOTER (56 bytes): index offset (u64), index length (u64), SHA-256 of the index, END_MAGIC
 * edge-snapshot-{gen}.records certificate records, one after another: `{sealed key}\n{chain PEM}`;
 *                             only ever appended to (fsync before the index that points at them is renamed
 *                             into place), and replaced by a new generation when the snapshot is rebuilt
 * ```
 *
 * So an update writes the index and the new records only, however many unchanged ones there are;
 * only the index is read at load; a certificate is read from its place when a handshake first asks.
 * A reader never sees half a write: the index it opens names records that were on disk before it
 * was renamed into place, and appends go past them.
 *
 * Refused as a whole (`SnapshotError`) when the magic is wrong, the index file is shorter or longer
 * than its footer says (truncated, or appended to), the index does not match its hash, or the
 * records file is missing or shorter than the index says. A record that does not match its own hash
 * is refused alone, when read.
 */

export const SNAPSHOT_FILE_NAME = 'edge-snapshot.bin';
const RECORDS_FILE = /^edge-snapshot-[0-9a-f]+\.records$/;

/** Where a node keeps its snapshot: in its data directory, beside its other private files. */
export function snapshotFile(dataDir: string): string {
  return path.join(dataDir, SNAPSHOT_FILE_NAME);
}
/** Format 2: routes by column (format 1, a row per route, is refused, and rewritten by the writer's first rebuild). */
const MAGIC = Buffer.from('PORTICO-SNAP-v2\n', 'latin1');
const RECORDS_MAGIC = Buffer.from('PORTICO-RECS-v1\n', 'latin1');
/** Where the first certificate record starts in a records file, past its magic. */
export const RECORDS_START = RECORDS_MAGIC.length;
const END_MAGIC = Buffer.from('PSNAPEND', 'latin1');
const FOOTER_BYTES = 8 + 8 + 32 + END_MAGIC.length;

/** What the index holds, in the compact form it is stored in (arrays, not objects: 100,000 names parse fast). */
export interface SnapshotIndex {
  /** When the store was last known to agree with this snapshot (ISO 8601). */
  takenAt: string;
  /** [app id, origin_url or null] */
  apps: [string, string | null][];
  /** [certificate hostname, record offset, record length, record SHA-256 (base64), notAfter (ISO)] */
  certificates: [string, number, number, string, string][];
  /**
   * The routes, a column per field, the i-th entry of each the i-th route's: 100,000 names parse into
   * three arrays, not 100,000 small ones that an edge would load and drop (about 8 MB of heap it
   * would hold until a full collection, when it starts from the snapshot during an outage).
   */
  routes: SnapshotRoutes;
  /** The records file (its name, beside the index) and how many of its bytes this index covers. */
  records: { file: string; bytes: number };
}

export interface SnapshotRoutes {
  /** Each served hostname (a wildcard claim's as `*.acme.com`). */
  names: string[];
  /** Its app: an index in `apps`. */
  apps: number[];
  /** Its certificate: an index in `certificates`, or -1. */
  certificates: number[];
  /** The few routes that redirect (to their app's primary domain): [index in `names`, redirectTo]. */
  redirects: [number, string][];
}

/** Routes with no route in them: the writer fills them, the reader leaves them so once loaded. */
export function emptyRoutes(): SnapshotRoutes {
  return { names: [], apps: [], certificates: [], redirects: [] };
}

/** Why a snapshot cannot be served: said in the log, as is. */
export class SnapshotError extends Error {
  override readonly name = 'SnapshotError';
}

/** A record's bytes, as written: the sealed key, a newline, the chain. */
export function certificateRecord(privateKeyEnc: string, certificatePem: string): Buffer {
  return Buffer.from(`${privateKeyEnc}\n${certificatePem}`, 'utf8');
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('base64');
}

/** Where a certificate record landed in a snapshot file. */
export interface Placement {
  offset: number;
  length: number;
  sha256: string;
}

/**
 * Writes one snapshot: records are appended one at a time (memory stays flat however many there
 * are), then `finish` flushes them, writes the index into a temporary file beside `file`, flushes
 * it, renames it over `file` and flushes the directory, so a reader (or a crash) finds the old
 * snapshot or the new one, never half of one. `abort` leaves the old one as it was.
 *
 * `base`: the records file of the current snapshot and where its records end, to append to (an
 * update); without it, a new records file is started (a rebuild), and once the index that names it
 * is in place the older ones are deleted.
 */
export class SnapshotBuilder {
  private readonly dir: string;
  private readonly records: string;
  private readonly fresh: boolean;
  private fd: number | undefined;
  private offset: number;

  constructor(
    private readonly file: string,
    base?: { records: string; bodyEnd: number },
  ) {
    this.dir = path.dirname(file);
    this.fresh = base === undefined;
    this.records = base?.records ?? `edge-snapshot-${randomBytes(6).toString('hex')}.records`;
    const recordsPath = path.join(this.dir, this.records);
    try {
      if (base) {
        this.fd = openSync(recordsPath, 'r+');
        // Past `bodyEnd` there is at most what a failed update appended: no index points there.
        ftruncateSync(this.fd, base.bodyEnd);
        this.offset = base.bodyEnd;
      } else {
        this.fd = openSync(recordsPath, 'wx', PRIVATE_FILE_MODE);
        writeAll(this.fd, RECORDS_MAGIC, 0);
        this.offset = RECORDS_MAGIC.length;
      }
    } catch (error) {
      this.abort();
      throw error;
    }
  }

  append(record: Buffer): Placement {
    const fd = this.open();
    writeAll(fd, record, this.offset);
    const placement = { offset: this.offset, length: record.length, sha256: sha256(record) };
    this.offset += record.length;
    return placement;
  }

  /**
   * Flushes the records, writes the index (naming them) atomically over the file; answers the
   * records file, where its records end, and the index file's size.
   */
  finish(index: Omit<SnapshotIndex, 'records'>): { records: string; bodyEnd: number; bytes: number } {
    const fd = this.open();
    const temp = path.join(this.dir, `.${path.basename(this.file)}.${process.pid}.tmp`);
    let indexFd: number | undefined;
    try {
      const bodyEnd = this.offset;
      fsyncSync(fd);
      closeSync(fd);
      this.fd = undefined;
      const json = Buffer.from(
        JSON.stringify({ ...index, records: { file: this.records, bytes: bodyEnd } }),
        'utf8',
      );
      const footer = Buffer.alloc(FOOTER_BYTES);
      footer.writeBigUInt64BE(BigInt(MAGIC.length), 0);
      footer.writeBigUInt64BE(BigInt(json.length), 8);
      createHash('sha256').update(json).digest().copy(footer, 16);
      END_MAGIC.copy(footer, 48);
      indexFd = openSync(temp, 'w', PRIVATE_FILE_MODE);
      writeAll(indexFd, MAGIC, 0);
      writeAll(indexFd, json, MAGIC.length);
      writeAll(indexFd, footer, MAGIC.length + json.length);
      fsyncSync(indexFd);
      closeSync(indexFd);
      indexFd = undefined;
      renameSync(temp, this.file);
      syncDirectory(this.dir);
      if (this.fresh) this.removeOtherGenerations();
      return { records: this.records, bodyEnd, bytes: MAGIC.length + json.length + FOOTER_BYTES };
    } catch (error) {
      if (indexFd !== undefined) closeSync(indexFd);
      rmSync(temp, { force: true });
      this.abort();
      throw error;
    }
  }

  /** Gives up: the current snapshot stays as it was (a new records file, not named by it, goes). */
  abort(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    if (this.fresh && !this.named()) rmSync(path.join(this.dir, this.records), { force: true });
  }

  /** Whether the index in place names this builder's records file. */
  private named(): boolean {
    try {
      return openSnapshot(this.file).closeAndTell((opened) => opened.index.records.file === this.records);
    } catch {
      return false;
    }
  }

  /** Older records files: readers that still hold one open keep reading it until they close it. */
  private removeOtherGenerations(): void {
    for (const name of readdirSync(this.dir)) {
      if (RECORDS_FILE.test(name) && name !== this.records)
        rmSync(path.join(this.dir, name), { force: true });
    }
  }

  private open(): number {
    if (this.fd === undefined) throw new Error('snapshot builder already finished');
    return this.fd;
  }
}

function writeAll(fd: number, bytes: Buffer, position: number): void {
  let written = 0;
  while (written < bytes.length) {
    written += writeSync(fd, bytes, written, bytes.length - written, position + written);
  }
}

/** Makes a rename durable: on Linux a rename is on disk once its directory is flushed. */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse to open or flush a directory; the rename itself is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** An opened snapshot: its index checked and parsed; records are read from `fd` (its records file) on demand. */
export interface OpenedSnapshot {
  /** The records file, open. */
  fd: number;
  index: SnapshotIndex;
  /** Where the records this index covers end. */
  bodyEnd: number;
  /** The index file's size, in bytes. */
  bytes: number;
  /** Closes `fd`, answering what `tell` answers of it first. */
  closeAndTell<T>(tell: (opened: OpenedSnapshot) => T): T;
}

/**
 * Opens the index `file`, checks it (magic, length, the index's hash) and opens the records file
 * it names (present, and as long as it says); the caller closes `fd`. Throws `SnapshotError`
 * saying what is wrong, or the file system's error (ENOENT: there is none).
 */
export function openSnapshot(file: string): OpenedSnapshot {
  try {
    return openOnce(file);
  } catch (error) {
    // A rebuild may have replaced the index and deleted the records file it named between the two
    // opens: the index read again names the new one.
    if (error instanceof RecordsMissing) return openOnce(file);
    throw error;
  }
}

class RecordsMissing extends SnapshotError {}

function isRoutes(routes: unknown): routes is SnapshotRoutes {
  if (typeof routes !== 'object' || routes === null) return false;
  const { names, apps, certificates, redirects } = routes as Partial<SnapshotRoutes>;
  return (
    Array.isArray(names) &&
    Array.isArray(apps) &&
    Array.isArray(certificates) &&
    Array.isArray(redirects) &&
    apps.length === names.length &&
    certificates.length === names.length
  );
}

function openOnce(file: string): OpenedSnapshot {
  const indexFd = openSync(file, 'r');
  let index: SnapshotIndex;
  let bytes: number;
  try {
    bytes = fstatSync(indexFd).size;
    if (bytes < MAGIC.length + FOOTER_BYTES) throw new SnapshotError(`${file}: truncated (${bytes} bytes)`);
    const magic = readAt(indexFd, 0, MAGIC.length);
    if (!magic.equals(MAGIC)) {
      const format = magic.toString('latin1').trim();
      throw new SnapshotError(
        format.startsWith('PORTICO-SNAP-')
          ? `${file}: written in another format (${format}, not ${MAGIC.toString('latin1').trim()}); the next snapshot replaces it`
          : `${file}: not an edge snapshot (wrong magic)`,
      );
    }
    const footer = readAt(indexFd, bytes - FOOTER_BYTES, FOOTER_BYTES);
    if (!footer.subarray(48).equals(END_MAGIC)) {
      throw new SnapshotError(`${file}: truncated or damaged (no footer at its end)`);
    }
    const indexOffset = Number(footer.readBigUInt64BE(0));
    const indexLength = Number(footer.readBigUInt64BE(8));
    if (indexOffset !== MAGIC.length || indexOffset + indexLength + FOOTER_BYTES !== bytes) {
      throw new SnapshotError(`${file}: its length (${bytes} bytes) is not the one its footer gives`);
    }
    const json = readAt(indexFd, indexOffset, indexLength);
    if (!createHash('sha256').update(json).digest().equals(footer.subarray(16, 48))) {
      throw new SnapshotError(`${file}: its index does not match its checksum`);
    }
    index = JSON.parse(json.toString('utf8')) as SnapshotIndex;
    if (
      typeof index.takenAt !== 'string' ||
      !Array.isArray(index.apps) ||
      !Array.isArray(index.certificates) ||
      !isRoutes(index.routes) ||
      typeof index.records?.file !== 'string' ||
      !RECORDS_FILE.test(index.records.file) ||
      typeof index.records.bytes !== 'number'
    ) {
      throw new SnapshotError(`${file}: its index is not a snapshot index`);
    }
  } finally {
    closeSync(indexFd);
  }
  const recordsPath = path.join(path.dirname(file), index.records.file);
  let fd: number;
  try {
    fd = openSync(recordsPath, 'r');
  } catch (error) {
    throw new RecordsMissing(
      `${recordsPath}, the records of ${file}, cannot be opened (${(error as NodeJS.ErrnoException).code})`,
    );
  }
  try {
    const size = fstatSync(fd).size;
    if (size < index.records.bytes || !readAt(fd, 0, RECORDS_MAGIC.length).equals(RECORDS_MAGIC)) {
      throw new SnapshotError(
        `${recordsPath}: truncated or damaged (${size} bytes, ${index.records.bytes} expected)`,
      );
    }
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  const opened: OpenedSnapshot = {
    fd,
    index,
    bodyEnd: index.records.bytes,
    bytes,
    closeAndTell: (tell) => {
      try {
        return tell(opened);
      } finally {
        closeSync(fd);
      }
    },
  };
  return opened;
}

/** Reads one record and checks its hash; throws `SnapshotError` when it does not match. */
export function readCertificateRecord(
  fd: number,
  offset: number,
  length: number,
  expected: string,
): { privateKeyEnc: string; certificatePem: string } {
  const record = readAt(fd, offset, length);
  if (sha256(record) !== expected) throw new SnapshotError(`certificate record at ${offset} is damaged`);
  const text = record.toString('utf8');
  const newline = text.indexOf('\n');
  return { privateKeyEnc: text.slice(0, newline), certificatePem: text.slice(newline + 1) };
}

function readAt(fd: number, position: number, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  let read = 0;
  while (read < length) {
    const n = readSync(fd, buffer, read, length - read, position + read);
    if (n === 0) throw new SnapshotError(`unexpected end of file at ${position + read}`);
    read += n;
  }
  return buffer;
}
