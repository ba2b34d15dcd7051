// The `punycode` package (Mathias Bynens' punycode.js, RFC 3492) ships no types. It is imported by
// its file path: a bare `punycode` would resolve to Node's deprecated built-in module instead.
declare module 'punycode/punycode.js' {
  const punycode: {
    /** Punycode to Unicode; throws a RangeError on malformed input. */
    decode(input: string): string;
    /** Unicode to Punycode. */
    encode(input: string): string;
  };
  export default punycode;
}
