import { constants } from 'node:crypto';
import { createSecureContext, type SecureContextOptions } from 'node:tls';

/**
 * The edge's TLS, as Mozilla's "intermediate" configuration recommends
 * (https://wiki.mozilla.org/Security/Server_Side_TLS): TLS 1.2 and 1.3 only, and in TLS 1.2 only
 * ECDHE key exchange with AEAD ciphers (no CBC suite, hence no LUCKY13; no static RSA or finite-field
 * DHE). Node's default list, used before, also allowed CBC and non-ECDHE suites through `HIGH`.
 *
 * OpenSSL settles the version, suite and group with the options of the context a connection starts
 * on, the server's own, before `SNICallback` swaps in the name's certificate: so these are set on
 * the server and nowhere else (test/integration/edge-tls.test.ts checks them through SNI names).
 */

/**
 * TLS 1.3: AES-128-GCM first, where Node's order puts AES-256-GCM first, as Go (Caddy), Cloudflare
 * and Mozilla do: as secure for TLS, and cheaper per record.
 */
const TLS13_SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];

/** TLS 1.2, Mozilla's order. Portico's certificates are ECDSA; the RSA ones serve an RSA certificate. */
const TLS12_SUITES = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
];

/** Key exchange groups, in the server's order of preference. */
const CLASSIC_GROUPS = ['X25519', 'P-256', 'P-384'];
/**
 * The hybrid post-quantum group (ML-KEM-768 with X25519), TLS 1.3 only: OpenSSL 3.5 (Node 24) has
 * it, 3.0 (Node 20) does not. One flat list: the server takes it whenever the client sent a key
 * share for it (browsers that support it do), and otherwise the best share the client did send,
 * with no HelloRetryRequest round trip to ask for it.
 */
const HYBRID_GROUP = 'X25519MLKEM768';

export interface EdgeTlsProfile {
  /** For `https.createServer` (or `tls.createServer`). */
  readonly serverOptions: SecureContextOptions;
  /** The groups offered, in order (`ecdhCurve`): shown at start so an operator sees whether ML-KEM is on. */
  readonly groups: string;
}

let profile: EdgeTlsProfile | undefined;

/**
 * The server options, worked out once per process. Whether the runtime's OpenSSL has the hybrid
 * group is found by building a context with it, never from a version string: a Node built against
 * another OpenSSL, or a distribution's OpenSSL with it disabled, answers for itself.
 */
export function edgeTlsProfile(): EdgeTlsProfile {
  if (profile !== undefined) return profile;
  const withHybrid = [HYBRID_GROUP, ...CLASSIC_GROUPS].join(':');
  const groups = supportsGroups(withHybrid) ? withHybrid : CLASSIC_GROUPS.join(':');
  profile = {
    groups,
    serverOptions: {
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.3',
      ciphers: [...TLS13_SUITES, ...TLS12_SUITES].join(':'),
      ecdhCurve: groups,
      // The server's order decides (in TLS 1.2 and 1.3), except that a client listing ChaCha20
      // first (one without AES instructions, typically a phone) gets ChaCha20.
      secureOptions: constants.SSL_OP_CIPHER_SERVER_PREFERENCE | constants.SSL_OP_PRIORITIZE_CHACHA,
    },
  };
  return profile;
}

function supportsGroups(groups: string): boolean {
  try {
    createSecureContext({ ecdhCurve: groups });
    return true;
  } catch {
    return false;
  }
}
