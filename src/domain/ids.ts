import { randomInt } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** `length` characters from [a-z0-9], each chosen uniformly by the CSPRNG (no modulo bias). */
export function randomAlphanumeric(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[randomInt(ALPHABET.length)];
  return out;
}

/** Prefixed resource ids as Mixpeek shapes them: `app_` + 12 lowercase alphanumerics. */
export const newId = (prefix: 'app' | 'org' | 'dom' | 'key' | 'job' | 'wh' | 'evt' | 'dlv' | 'rev') =>
  `${prefix}_${randomAlphanumeric(12)}`;

/** 2020-01-01T00:00:00Z: six base-36 digits of seconds since then last until 2089. */
const TIME_ORDERED_EPOCH_MS = Date.UTC(2020, 0, 1);

/**
 * An id of the same shape as `newId`'s whose first six characters are the second it was made in
 * (base 36, so ids sort by it) and whose last six are random. A table's id index then takes new rows
 * at its end, not anywhere: random ids gave every insert a leaf page of its own to write at commit
 * (SQLite's COMMIT cost 2 to 2.5 times as much per added domain). Six random characters are 2.2
 * billion per second, not 4.7e18 ids in all: a clash is rare but possible, and callers retry it.
 */
export function newTimeOrderedId(prefix: 'dom', now: Date): string {
  const seconds = Math.floor((now.getTime() - TIME_ORDERED_EPOCH_MS) / 1000);
  return `${prefix}_${seconds.toString(36).padStart(6, '0')}${randomAlphanumeric(6)}`;
}

/**
 * A domain claim's ownership token: 32 characters of [a-z0-9], about 165 random bits (the contract
 * asks for at least 128). A new one for every claim, so a token from an earlier claim never verifies
 * a later one.
 */
export const newVerificationToken = () => randomAlphanumeric(32);
