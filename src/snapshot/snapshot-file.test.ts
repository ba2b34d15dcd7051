import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SecretBox } from '../secrets/secret-box.js';
import {
  certificateRecord,
  openSnapshot,
  readCertificateRecord,
  SnapshotBuilder,
  SnapshotError,
  type SnapshotIndex,
  snapshotFile,
} from './snapshot-file.js';
import { SnapshotReader } from './snapshot-reader.js';

/** Log lines as the reader writes them: a test reads what an operator would. */
function recordingLogger() {
  const lines: { level: string; fields: Record<string, unknown>; msg: string }[] = [];
  const at =
    (level: string) =>
    (fields: unknown, msg?: string): void => {
      lines.push({
        level,
        fields: (typeof fields === 'object' ? fields : {}) as Record<string, unknown>,
        msg: msg ?? String(fields),
      });
    };
  return { lines, logger: { info: at('info'), warn: at('warn'), error: at('error') } as never };
}

describe('the edge snapshot file', () => {
  let dir: string;
  let file: string;
  const box = SecretBox.fromText(randomBytes(32).toString('base64'));
  const chain = '-----BEGIN CERTIFICATE-----\nMIIB…leaf\n-----END CERTIFICATE-----\n';
  const key = '-----BEGIN PRIVATE KEY-----\nMIGH…secret\n-----END PRIVATE KEY-----\n';

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'portico-snapshot-'));
    file = snapshotFile(dir);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A snapshot of `names`, each served by one app with its own certificate record. */
  const write = (
    names: string[],
    takenAt = new Date().toISOString(),
    base?: { records: string; bodyEnd: number },
  ) => {
    const builder = new SnapshotBuilder(file, base && { records: base.records, bodyEnd: base.bodyEnd });
    const placed = names.map((name) =>
      builder.append(certificateRecord(box.seal(`${key}${name}`), `${chain}${name}`)),
    );
    return builder.finish({
      takenAt,
      apps: [['app_1', 'http://127.0.0.1:9']],
      certificates: names.map((name, i) => {
        const at = placed[i] as { offset: number; length: number; sha256: string };
        return [name, at.offset, at.length, at.sha256, '2030-01-01T00:00:00.000Z'];
      }),
      routes: { names, apps: names.map(() => 0), certificates: names.map((_, i) => i), redirects: [] },
    } satisfies Omit<SnapshotIndex, 'records'>);
  };

  it('reads back what was written: routes, and each certificate with its key opened', () => {
    write(['a.example.com', 'b.example.com']);
    const { lines, logger } = recordingLogger();
    const reader = new SnapshotReader({ file, box, maxAgeMs: 60_000, logger });
    expect(reader.route('b.example.com')).toEqual({
      hostname: 'b.example.com',
      appId: 'app_1',
      originUrl: 'http://127.0.0.1:9',
    });
    expect(reader.route('c.example.com')).toBeUndefined();
    const certificate = reader.certificate('a.example.com');
    expect(certificate?.certificatePem).toBe(`${chain}a.example.com`);
    expect(certificate?.privateKeyPem).toBe(`${key}a.example.com`);
    expect(certificate?.notAfter.toISOString()).toBe('2030-01-01T00:00:00.000Z');
    expect(lines.find((line) => line.msg === 'edge: snapshot loaded')?.fields.names).toBe(2);
    reader.close();
  });

  it('holds keys only sealed, in files of its owner alone', () => {
    const { records } = write(['a.example.com']);
    for (const name of [path.basename(file), records]) {
      expect(readFileSync(path.join(dir, name), 'utf8')).not.toContain('PRIVATE KEY');
      expect(statSync(path.join(dir, name)).mode & 0o777).toBe(0o600);
    }
    expect(readFileSync(path.join(dir, records), 'utf8')).toContain('a.example.com');
  });

  it('is replaced atomically: an update appends records and replaces the index; an abandoned one changes nothing served', () => {
    const first = write(['a.example.com']);
    const before = readFileSync(file);
    const abandoned = new SnapshotBuilder(file, { records: first.records, bodyEnd: first.bodyEnd });
    abandoned.append(certificateRecord(box.seal(key), chain));
    // Until `finish`, the index is the old one; abandoned, it still is, and still opens.
    expect(readFileSync(file).equals(before)).toBe(true);
    abandoned.abort();
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(openSnapshot(file).closeAndTell((opened) => opened.index.routes.names.length)).toBe(1);
    // A rebuild abandoned leaves no records file of its own behind.
    new SnapshotBuilder(file).abort();
    expect(readdirSync(dir).sort()).toEqual([path.basename(file), first.records].sort());

    const second = write(['a.example.com', 'b.example.com'], undefined, first);
    expect(second.records).toBe(first.records);
    expect(second.bodyEnd).toBeGreaterThan(first.bodyEnd);
    const opened = openSnapshot(file);
    expect(opened.index.routes.names).toEqual(['a.example.com', 'b.example.com']);
    // The first record is still there, before the appended ones, and the new index points at them.
    const [, offset, length, hash] = opened.index.certificates[1] as SnapshotIndex['certificates'][number];
    expect(offset).toBeGreaterThanOrEqual(first.bodyEnd);
    expect(readCertificateRecord(opened.fd, offset, length, hash).certificatePem).toBe(
      `${chain}b.example.com`,
    );
  });

  it('refuses a truncated file, with a clear log, and serves nothing from it', () => {
    write(['a.example.com', 'b.example.com']);
    truncateSync(file, statSync(file).size - 10);
    expect(() => openSnapshot(file)).toThrow(SnapshotError);
    expect(() => openSnapshot(file)).toThrow(/truncated or damaged/);
    const { lines, logger } = recordingLogger();
    const reader = new SnapshotReader({ file, box, maxAgeMs: 60_000, logger });
    expect(() => reader.route('a.example.com')).toThrow(/edge snapshot refused: .*truncated/);
    const refused = lines.find((line) => line.level === 'error');
    expect(refused?.msg).toBe('edge: snapshot refused, not served');
    expect(String(refused?.fields.reason)).toMatch(/truncated/);
  });

  it('refuses a file whose index was altered, one with bytes appended, and one whose records are missing or cut', () => {
    const { records, bodyEnd } = write(['a.example.com']);
    const bytes = readFileSync(file);
    const altered = Buffer.from(bytes);
    altered[21] = (altered[21] ?? 0) ^ 0x20;
    writeFileSync(file, altered);
    expect(() => openSnapshot(file)).toThrow(/does not match its checksum/);
    writeFileSync(file, Buffer.concat([bytes, Buffer.from('x')]));
    expect(() => openSnapshot(file)).toThrow(SnapshotError);
    writeFileSync(
      file,
      Buffer.from('not a snapshot at all, but long enough to have a footer in it'.repeat(2)),
    );
    expect(() => openSnapshot(file)).toThrow(/wrong magic/);
    // One of an earlier format (a row per route) is refused as such, whole, until the writer replaces it.
    const earlier = Buffer.from(bytes);
    earlier.write('PORTICO-SNAP-v1\n', 0, 'latin1');
    writeFileSync(file, earlier);
    expect(() => openSnapshot(file)).toThrow(
      /written in another format \(PORTICO-SNAP-v1, not PORTICO-SNAP-v2\)/,
    );
    writeFileSync(file, bytes);
    truncateSync(path.join(dir, records), bodyEnd - 1);
    expect(() => openSnapshot(file)).toThrow(/truncated or damaged \(\d+ bytes, \d+ expected\)/);
    rmSync(path.join(dir, records));
    expect(() => openSnapshot(file)).toThrow(/cannot be opened \(ENOENT\)/);
  });

  it('refuses a certificate record that was altered, alone', () => {
    write(['a.example.com', 'b.example.com']);
    const opened = openSnapshot(file);
    const [, offset] = opened.index.certificates[0] as SnapshotIndex['certificates'][number];
    const recordsPath = path.join(dir, opened.index.records.file);
    const bytes = readFileSync(recordsPath);
    bytes[offset + 3] = (bytes[offset + 3] ?? 0) ^ 0x01;
    writeFileSync(recordsPath, bytes);
    const reader = new SnapshotReader({ file, box, maxAgeMs: 60_000, logger: recordingLogger().logger });
    expect(() => reader.certificate('a.example.com')).toThrow(/damaged/);
    expect(reader.certificate('b.example.com')?.certificatePem).toBe(`${chain}b.example.com`);
  });

  it('is not served past its maximum age, and says so', () => {
    const takenAt = Date.now() - 120_000;
    write(['a.example.com'], new Date(takenAt).toISOString());
    const { lines, logger } = recordingLogger();
    const reader = new SnapshotReader({ file, box, maxAgeMs: 60_000, logger });
    expect(() => reader.route('a.example.com')).toThrow(/PORTICO_EDGE_SNAPSHOT_MAX_AGE_SECONDS/);
    expect(() => reader.certificate('a.example.com')).toThrow(/more than/);
    // Said once, not once per request.
    expect(lines.filter((line) => line.level === 'warn')).toHaveLength(1);
    // The same snapshot is served by a reader that allows its age.
    const lenient = new SnapshotReader({ file, box, maxAgeMs: 600_000, logger });
    expect(lenient.route('a.example.com')?.appId).toBe('app_1');
  });

  it('says where the edge serves from, and picks up a newer snapshot', () => {
    write(['a.example.com']);
    let now = Date.now();
    const reader = new SnapshotReader({
      file,
      box,
      maxAgeMs: 60_000,
      logger: recordingLogger().logger,
      now: () => now,
    });
    expect(reader.state().servingSince).toBeUndefined();
    reader.route('a.example.com');
    expect(reader.state().servingSince?.getTime()).toBe(now);
    expect(reader.route('b.example.com')).toBeUndefined();
    write(['a.example.com', 'b.example.com']);
    now += 1_000;
    expect(reader.route('b.example.com')?.hostname).toBe('b.example.com');
    reader.storeAnswered();
    expect(reader.state().servingSince).toBeUndefined();
    expect(existsSync(file)).toBe(true);
  });
});
