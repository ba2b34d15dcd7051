import { chmodSync, closeSync, mkdirSync, openSync, statSync } from 'node:fs';

/**
 * What Portico keeps on disk is readable by its owner only: the SQLite database (API key hashes,
 * sealed secrets, every tenant's domains) with its -wal and -shm, `secret.key` that opens the sealed
 * secrets, and the local CA's key. Nobody else on the machine needs any of it.
 *
 * Directories Portico creates are 0700, files 0600. A directory that already exists is left as it
 * is: it may be an operator's (a mounted volume, a directory a backup group reads, the current
 * directory), and changing its mode would surprise them; the files in it are owner-only anyway
 * (docs/operations.md, "What `./data` holds").
 */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** Creates `dir` and any missing parent owner-only (0700); an existing directory keeps its mode. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
}

/**
 * Creates `file` empty and owner-only (0600) when it is missing; an existing one loses any group
 * and other access it has (an earlier version's, made 0644).
 */
export function ensurePrivateFile(file: string): void {
  closeSync(openSync(file, 'a', PRIVATE_FILE_MODE));
  restrictToOwner(file);
}

/**
 * Takes group and other access away from `file` when it exists and has any. A file of another
 * owner (which only its owner may chmod) is left as it is rather than stopping the start.
 */
export function restrictToOwner(file: string): void {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if ((mode & 0o077) === 0) return;
  try {
    chmodSync(file, mode & 0o700);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
  }
}
