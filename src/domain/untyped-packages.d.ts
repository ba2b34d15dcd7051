// Types for packages Portico uses that ship none.

// The `punycode` package (Mathias Bynens' punycode.js, RFC 3492). It is imported by
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

// tr46 (UTS #46 processing, the IDNA mapping browsers use through whatwg-url) ships no types.
declare module 'tr46' {
  export function toASCII(
    domainName: string,
    options?: {
      checkHyphens?: boolean;
      checkBidi?: boolean;
      checkJoiners?: boolean;
      useSTD3ASCIIRules?: boolean;
      verifyDNSLength?: boolean;
      transitionalProcessing?: boolean;
      ignoreInvalidPunycode?: boolean;
    },
  ): string | null;
}
