/**
 * What a TLS server says in the clear, read off the wire under a real node:tls client: the
 * ServerHello's version, cipher suite and key-exchange group, or the alert it refused the handshake
 * with. Tests assert these protocol values (RFC 8446, RFC 5246, IANA's registries) rather than the
 * error strings a runtime's OpenSSL makes of them: OpenSSL 3.0 (Node 20) reports a handshake_failure
 * alert as `ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE`, OpenSSL 3.5 (Node 24) as
 * `ERR_SSL_SSL/TLS_ALERT_HANDSHAKE_FAILURE`, and the client has no API for the group agreed.
 */
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';

/** Alert descriptions (RFC 8446 section 6, RFC 7301). */
export const TLS_ALERT = {
  handshake_failure: 40,
  protocol_version: 70,
  no_application_protocol: 120,
} as const;

/** Key-exchange groups (IANA "TLS Supported Groups"). */
export const TLS_GROUP = {
  secp256r1: 0x0017,
  secp384r1: 0x0018,
  secp521r1: 0x0019,
  x25519: 0x001d,
  x448: 0x001e,
  ffdhe2048: 0x0100,
  X25519MLKEM768: 0x11ec,
} as const;

export const TLS_VERSION = { 'TLSv1.2': 0x0303, 'TLSv1.3': 0x0304 } as const;

export interface ServerHello {
  /** 0x0303 (TLS 1.2) or 0x0304 (TLS 1.3, from the supported_versions extension). */
  version: number;
  cipherSuite: number;
  /** TLS 1.3: the key_share's group; TLS 1.2: the ServerKeyExchange's named curve (ECDHE). */
  group: number | undefined;
}

export interface TlsExchange {
  /** The handshake completed (the client's `secureConnect`). */
  connected: boolean;
  /** The fatal alert the server refused the handshake with, sent in the clear. */
  alert: number | undefined;
  /** The server's hello, when it sent one (a HelloRetryRequest is not one). */
  serverHello: ServerHello | undefined;
  /** The group a HelloRetryRequest asked the client for, if the server sent one. */
  helloRetryGroup: number | undefined;
  /** The protocol ALPN agreed, read from the client once connected. */
  alpnProtocol: string | false | null | undefined;
  /** The client's error, as a last resort for a failure message; never asserted on. */
  error: Error | undefined;
}

/**
 * One handshake with a node:tls client (`options`: host, port, servername, and what the client
 * offers), carried over a JavaScript stream that copies the server's bytes as they arrive. Resolves
 * once the handshake completes or fails, with what the server sent before encryption started.
 */
export function tlsExchange(
  options: tls.ConnectionOptions & { host: string; port: number },
): Promise<TlsExchange> {
  const { host, port, ...clientOptions } = options;
  return new Promise((resolve) => {
    const received: Buffer[] = [];
    const raw = net.connect(port, host);
    const tap = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        raw.write(chunk, callback);
      },
      final(callback) {
        raw.end();
        callback();
      },
      destroy(error, callback) {
        raw.destroy();
        callback(error);
      },
    });
    raw.on('data', (chunk: Buffer) => {
      received.push(chunk);
      tap.push(chunk);
    });
    raw.on('end', () => tap.push(null));
    raw.on('error', (error) => tap.destroy(error));

    const socket = tls.connect({ ...clientOptions, socket: tap });
    let settled = false;
    const settle = (connected: boolean, error?: Error) => {
      if (settled) return;
      settled = true;
      const alpnProtocol = connected ? socket.alpnProtocol : undefined;
      socket.destroy();
      resolve({ connected, alpnProtocol, error, ...readServerFlight(Buffer.concat(received)) });
    };
    socket.once('secureConnect', () => settle(true));
    socket.once('error', (error) => settle(false, error));
    socket.once('close', () => settle(false));
  });
}

const HELLO_RETRY_RANDOM = Buffer.from(
  'cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c',
  'hex',
);
const RECORD = { changeCipherSpec: 20, alert: 21, handshake: 22 } as const;
const HANDSHAKE = { serverHello: 2, serverKeyExchange: 12 } as const;
const EXTENSION = { supportedVersions: 0x002b, keyShare: 0x0033 } as const;

/** Reads the server's plaintext records: handshake messages up to encryption, and any alert. */
function readServerFlight(bytes: Buffer): Pick<TlsExchange, 'alert' | 'serverHello' | 'helloRetryGroup'> {
  const result: Pick<TlsExchange, 'alert' | 'serverHello' | 'helloRetryGroup'> = {
    alert: undefined,
    serverHello: undefined,
    helloRetryGroup: undefined,
  };
  let handshake = Buffer.alloc(0);
  for (let offset = 0; offset + 5 <= bytes.length; ) {
    const type = bytes[offset] as number;
    const length = bytes.readUInt16BE(offset + 3);
    const fragment = bytes.subarray(offset + 5, offset + 5 + length);
    offset += 5 + length;
    if (type === RECORD.alert && fragment.length >= 2) {
      result.alert = fragment[1];
      break;
    }
    // TLS 1.2 encrypts from the server's ChangeCipherSpec on; TLS 1.3 sends one only for
    // middlebox compatibility (after a HelloRetryRequest too) and encrypts all that follows its
    // ServerHello, read below.
    if (type === RECORD.changeCipherSpec) {
      if (result.serverHello !== undefined) break;
      continue;
    }
    if (type !== RECORD.handshake) break;
    handshake = Buffer.concat([handshake, fragment]);
    while (handshake.length >= 4) {
      const messageLength = handshake.readUIntBE(1, 3);
      if (handshake.length < 4 + messageLength) break;
      const body = handshake.subarray(4, 4 + messageLength);
      if (handshake[0] === HANDSHAKE.serverHello) readServerHello(body, result);
      else if (handshake[0] === HANDSHAKE.serverKeyExchange && result.serverHello && body[0] === 3) {
        // ECParameters: curve_type named_curve (3), then the curve (RFC 8422 section 5.4).
        result.serverHello.group = body.readUInt16BE(1);
      }
      handshake = handshake.subarray(4 + messageLength);
    }
    if (result.serverHello?.version === TLS_VERSION['TLSv1.3']) break;
  }
  return result;
}

function readServerHello(body: Buffer, result: Pick<TlsExchange, 'serverHello' | 'helloRetryGroup'>): void {
  // legacy_version (2), random (32), session id (1 + n), cipher suite (2), compression (1).
  let offset = 2;
  const random = body.subarray(offset, offset + 32);
  offset += 32;
  offset += 1 + (body[offset] as number);
  const cipherSuite = body.readUInt16BE(offset);
  offset += 3;
  let version = body.readUInt16BE(0);
  let group: number | undefined;
  if (offset + 2 <= body.length) {
    const end = offset + 2 + body.readUInt16BE(offset);
    for (offset += 2; offset + 4 <= end; ) {
      const extension = body.readUInt16BE(offset);
      const length = body.readUInt16BE(offset + 2);
      const data = body.subarray(offset + 4, offset + 4 + length);
      if (extension === EXTENSION.supportedVersions) version = data.readUInt16BE(0);
      if (extension === EXTENSION.keyShare) group = data.readUInt16BE(0);
      offset += 4 + length;
    }
  }
  if (random.equals(HELLO_RETRY_RANDOM)) result.helloRetryGroup = group;
  else result.serverHello = { version, cipherSuite, group };
}

/**
 * What `tlsExchange` resolves with when the server refused the handshake with `alert` before its
 * hello, so before any certificate (for `toMatchObject`).
 */
export function refusedWith(alert: number): Pick<TlsExchange, 'connected' | 'alert' | 'serverHello'> {
  return { connected: false, alert, serverHello: undefined };
}
