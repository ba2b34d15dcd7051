/**
 * Punycode (RFC 3492) and the check that an `xn--` label is a real A-label. Pure, no I/O.
 *
 * The conversion is the `punycode` package's (pure JavaScript, the same on every runtime) rather than
 * `url.domainToASCII`, whose leniency changed between Node versions (on Node 24 it accepts `xn--zz`,
 * which decodes to nothing): what Portico accepts must not depend on the runtime. The built-in
 * `node:punycode` is deprecated.
 */
import punycode from 'punycode/punycode.js';

/** Decodes a Punycode string (without `xn--`) to Unicode, or answers undefined when it is malformed. */
export function decodePunycode(input: string): string | undefined {
  try {
    return punycode.decode(input);
  } catch {
    return undefined;
  }
}

/** Encodes Unicode text as Punycode (without `xn--`). */
export const encodePunycode = (input: string): string => punycode.encode(input);

/**
 * Whether `label` (lowercase ASCII, starting `xn--`) is a valid A-label: its Punycode decodes, the
 * result encodes back to exactly the same label (so there is one spelling per name), and the
 * U-label is one IDNA2008 could produce. The last part is checked by properties that do not depend
 * on a Unicode table of the runtime's: it holds at least one non-ASCII character (an all-ASCII
 * U-label is spelled without `xn--`), is in NFC and lowercase, consists of letters, marks, digits
 * and hyphens only (no symbols, punctuation, spaces or controls), does not start with a combining
 * mark (RFC 5891 section 4.2.3.2), and keeps the hyphen rules of any label.
 */
export function isValidALabel(label: string): boolean {
  if (!label.startsWith('xn--') || label.length > 63 || label !== label.toLowerCase()) return false;
  const unicode = decodePunycode(label.slice(4));
  if (!unicode || `xn--${encodePunycode(unicode)}` !== label) return false;
  if ([...unicode].every((char) => char.charCodeAt(0) < 0x80)) return false;
  if (unicode.normalize('NFC') !== unicode || unicode.toLowerCase() !== unicode) return false;
  if (!/^[\p{L}\p{M}\p{N}-]+$/u.test(unicode) || /^\p{M}/u.test(unicode)) return false;
  if (unicode.startsWith('-') || unicode.endsWith('-') || unicode.slice(2, 4) === '--') return false;
  return true;
}
