import { randomInt } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** `length` characters from [a-z0-9], each chosen uniformly by the CSPRNG (no modulo bias). */
export function randomAlphanumeric(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[randomInt(ALPHABET.length)];
  return out;
}

/** Prefixed resource ids as Mixpeek shapes them: `app_` + 12 lowercase alphanumerics. */
export const newId = (prefix: 'app' | 'org' | 'dom' | 'key' | 'job' | 'wh' | 'evt' | 'dlv') =>
  `${prefix}_${randomAlphanumeric(12)}`;

/**
 * A domain claim's ownership token: 32 characters of [a-z0-9], about 165 random bits (the contract
 * asks for at least 128). A new one for every claim, so a token from an earlier claim never verifies
 * a later one.
 */
export const newVerificationToken = () => randomAlphanumeric(32);
