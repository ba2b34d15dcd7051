import { createHash } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { PRIVATE_FILE_MODE } from '../private-files.js';

/**
 * The edge's snapshot file: what an edge node serves (every route, and the current certificate of
 * each, its key sealed as the store keeps it), so it can serve through a store outage and start
 * while the store is down (docs/operations.md, "When the store is down").
 *
 * Layout, built to be opened fast and to bound memory: only the index is read at load; a
 * certificate is read from its place in the file when a handshake first asks for it.
 *
 * ```
 * MAGIC (16 bytes)
 * certificate records, one after another: `{sealed key}\n{chain PEM}`
 * the index: JSON (apps, certificates with offset, length, SHA-256 and expiry, routes)
 * FOOTER (56 bytes): index offset (u64), index length (u64), SHA-256 of the index, END_MAGIC
 * ```
 *
 * Refused as a whole (`SnapshotError`) when the magic is wrong, the file is shorter or longer than
 * its footer says (truncated, or appended to), or the index does not match its hash. A record that
 * does not match its own hash is refused alone, when read.
 */

export const SNAPSHOT_FILE_NAME = 'edge-snapshot.bin';

/** Where a node keeps its snapshot: in its data directory, beside its other private files. */
export function snapshotFile(dataDir: string): string {
  return path.join(dataDir, SNAPSHOT_FILE_NAME);
}
const MAGIC = Buffer.from('PORTICO-SNAP-v1\n', 'latin1');
/** Where the first certificate record starts, past the magic. */
export const RECORDS_START = MAGIC.length;
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
  /** [hostname, index in apps, redirectTo or '', index in certificates or -1] */
  routes: [string, number, string, number][];
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
 * Writes one snapshot to `file` atomically: into a temporary file beside it, flushed to disk
 * (fsync), then renamed over `file` and the directory flushed, so a reader (or a crash) finds the
 * old snapshot or the new one, never half of one. Records are appended one at a time (memory
 * stays flat however many there are), then `finish` writes the index and renames; `abort`
 * removes the temporary file.
 *
 * `base`: a snapshot whose records are kept (its file copied by the kernel, its index cut off), so
 * an update appends only what changed.
 */
export class SnapshotBuilder {
  private readonly temp: string;
  private fd: number | undefined;
  private offset: number;

  constructor(
    private readonly file: string,
    base?: { file: string; bodyEnd: number },
  ) {
    this.temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
    try {
      if (base) {
        // copy_file_range (or a reflink): the kept records never pass through the heap.
        copyFileSync(base.file, this.temp);
        this.fd = openSync(this.temp, 'r+', PRIVATE_FILE_MODE);
        ftruncateSync(this.fd, base.bodyEnd);
        this.offset = base.bodyEnd;
      } else {
        this.fd = openSync(this.temp, 'w', PRIVATE_FILE_MODE);
        writeAll(this.fd, MAGIC, 0);
        this.offset = MAGIC.length;
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

  /** Writes the index and the footer, flushes, renames over the file; answers where the records end and the size. */
  finish(index: SnapshotIndex): { bodyEnd: number; bytes: number } {
    const fd = this.open();
    try {
      const bodyEnd = this.offset;
      const bytes = Buffer.from(JSON.stringify(index), 'utf8');
      writeAll(fd, bytes, bodyEnd);
      const footer = Buffer.alloc(FOOTER_BYTES);
      footer.writeBigUInt64BE(BigInt(bodyEnd), 0);
      footer.writeBigUInt64BE(BigInt(bytes.length), 8);
      createHash('sha256').update(bytes).digest().copy(footer, 16);
      END_MAGIC.copy(footer, 48);
      writeAll(fd, footer, bodyEnd + bytes.length);
      fsyncSync(fd);
      closeSync(fd);
      this.fd = undefined;
      renameSync(this.temp, this.file);
      syncDirectory(path.dirname(this.file));
      return { bodyEnd, bytes: bodyEnd + bytes.length + FOOTER_BYTES };
    } catch (error) {
      this.abort();
      throw error;
    }
  }

  abort(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    rmSync(this.temp, { force: true });
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

/** An opened snapshot: its index checked and parsed; records are read from `fd` on demand. */
export interface OpenedSnapshot {
  fd: number;
  index: SnapshotIndex;
  /** Where the records end and the index begins. */
  bodyEnd: number;
  /** The file's size, in bytes. */
  bytes: number;
}

/**
 * Opens `file` and checks it (magic, length, the index's hash); the caller closes `fd`. Throws
 * `SnapshotError` saying what is wrong, or the file system's error (ENOENT: there is none).
 */
export function openSnapshot(file: string): OpenedSnapshot {
  const fd = openSync(file, 'r');
  try {
    const bytes = fstatSync(fd).size;
    if (bytes < MAGIC.length + FOOTER_BYTES) throw new SnapshotError(`${file}: truncated (${bytes} bytes)`);
    const magic = readAt(fd, 0, MAGIC.length);
    if (!magic.equals(MAGIC)) throw new SnapshotError(`${file}: not an edge snapshot (wrong magic)`);
    const footer = readAt(fd, bytes - FOOTER_BYTES, FOOTER_BYTES);
    if (!footer.subarray(48).equals(END_MAGIC)) {
      throw new SnapshotError(`${file}: truncated or damaged (no footer at its end)`);
    }
    const bodyEnd = Number(footer.readBigUInt64BE(0));
    const indexLength = Number(footer.readBigUInt64BE(8));
    if (bodyEnd < MAGIC.length || bodyEnd + indexLength + FOOTER_BYTES !== bytes) {
      throw new SnapshotError(`${file}: its length (${bytes} bytes) is not the one its footer gives`);
    }
    const index = readAt(fd, bodyEnd, indexLength);
    if (!createHash('sha256').update(index).digest().equals(footer.subarray(16, 48))) {
      throw new SnapshotError(`${file}: its index does not match its checksum`);
    }
    const parsed = JSON.parse(index.toString('utf8')) as SnapshotIndex;
    if (
      typeof parsed.takenAt !== 'string' ||
      !Array.isArray(parsed.apps) ||
      !Array.isArray(parsed.certificates) ||
      !Array.isArray(parsed.routes)
    ) {
      throw new SnapshotError(`${file}: its index is not a snapshot index`);
    }
    return { fd, index: parsed, bodyEnd, bytes };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
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
