/**
 * Punycode (RFC 3492) and the check that an `xn--` label is a real A-label. Pure, no I/O.
 *
 * Written here rather than taken from `url.domainToASCII`: that function's leniency changed between
 * Node versions (on Node 24 it accepts `xn--zz`, which decodes to nothing), and what Portico accepts
 * must not depend on the runtime. `node:punycode` is deprecated.
 */

const BASE = 36;
const TMIN = 1;
const TMAX = 26;
const SKEW = 38;
const DAMP = 700;
const INITIAL_BIAS = 72;
const INITIAL_N = 0x80;
const MAX_CODE_POINT = 0x10ffff;

function adapt(delta: number, numPoints: number, firstTime: boolean): number {
  let d = firstTime ? Math.floor(delta / DAMP) : delta >> 1;
  d += Math.floor(d / numPoints);
  let k = 0;
  while (d > ((BASE - TMIN) * TMAX) >> 1) {
    d = Math.floor(d / (BASE - TMIN));
    k += BASE;
  }
  return k + Math.floor(((BASE - TMIN + 1) * d) / (d + SKEW));
}

/** 0-35 for a-z, 0-9 (case-insensitive, as RFC 3492 says), else undefined. */
function digitOf(code: number): number | undefined {
  if (code >= 0x30 && code <= 0x39) return code - 22;
  if (code >= 0x41 && code <= 0x5a) return code - 0x41;
  if (code >= 0x61 && code <= 0x7a) return code - 0x61;
  return undefined;
}

const digitChar = (d: number): string => String.fromCharCode(d < 26 ? 0x61 + d : d + 22);

const threshold = (k: number, bias: number): number =>
  k <= bias ? TMIN : k >= bias + TMAX ? TMAX : k - bias;

/** Decodes a Punycode string (without `xn--`) to Unicode, or answers undefined when it is malformed. */
export function decodePunycode(input: string): string | undefined {
  const delimiter = input.lastIndexOf('-');
  const output: number[] = [];
  for (let j = 0; j < Math.max(delimiter, 0); j++) {
    const code = input.charCodeAt(j);
    if (code >= 0x80) return undefined;
    output.push(code);
  }
  let n = INITIAL_N;
  let bias = INITIAL_BIAS;
  let i = 0;
  for (let index = delimiter >= 0 ? delimiter + 1 : 0; index < input.length; ) {
    const oldi = i;
    let w = 1;
    for (let k = BASE; ; k += BASE) {
      if (index >= input.length) return undefined;
      const digit = digitOf(input.charCodeAt(index++));
      if (digit === undefined) return undefined;
      i += digit * w;
      if (i > MAX_CODE_POINT * (output.length + 1) * 2) return undefined;
      const t = threshold(k, bias);
      if (digit < t) break;
      w *= BASE - t;
    }
    bias = adapt(i - oldi, output.length + 1, oldi === 0);
    n += Math.floor(i / (output.length + 1));
    i %= output.length + 1;
    if (n > MAX_CODE_POINT || (n >= 0xd800 && n <= 0xdfff)) return undefined;
    output.splice(i, 0, n);
    i++;
  }
  return String.fromCodePoint(...output);
}

/** Encodes Unicode text as Punycode (without `xn--`). */
export function encodePunycode(input: string): string {
  const codePoints = Array.from(input, (char) => char.codePointAt(0) as number);
  let output = codePoints
    .filter((c) => c < 0x80)
    .map((c) => String.fromCharCode(c))
    .join('');
  const basic = output.length;
  let handled = basic;
  if (basic > 0) output += '-';
  let n = INITIAL_N;
  let delta = 0;
  let bias = INITIAL_BIAS;
  while (handled < codePoints.length) {
    const m = Math.min(...codePoints.filter((c) => c >= n));
    delta += (m - n) * (handled + 1);
    n = m;
    for (const c of codePoints) {
      if (c < n) delta++;
      if (c !== n) continue;
      let q = delta;
      for (let k = BASE; ; k += BASE) {
        const t = threshold(k, bias);
        if (q < t) break;
        output += digitChar(t + ((q - t) % (BASE - t)));
        q = Math.floor((q - t) / (BASE - t));
      }
      output += digitChar(q);
      bias = adapt(delta, handled + 1, handled === basic);
      delta = 0;
      handled++;
    }
    delta++;
    n++;
  }
  return output;
}

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
