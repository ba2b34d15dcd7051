import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';

/** What a visitor got from one HTTPS request: the answer, and the certificate's names it was made with. */
export interface Visit {
  status: number;
  body: string;
  /** The presented leaf's SAN, as Node spells it (`DNS:*.acme.com`). */
  subjectAltName: string | undefined;
}

/**
 * A GET / as a browser sends it for `hostname` (SNI and Host alike), to the edge's HTTPS port on
 * loopback, trusting only `ca`: a certificate that does not cover the name fails the request.
 * Rejects when the handshake fails (a name the edge does not serve gets no certificate at all).
 */
export function visit(port: number, hostname: string, ca: string): Promise<Visit> {
  return new Promise<Visit>((resolve, reject) => {
    const req = https.get(
      { host: '127.0.0.1', port, servername: hostname, headers: { host: hostname }, ca, agent: false },
      (res) => {
        const socket = res.socket as TLSSocket;
        const subjectAltName = socket.getPeerCertificate().subjectaltname;
        let body = '';
        res.on('data', (chunk) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, subjectAltName }));
      },
    );
    req.on('error', reject);
  });
}

/** Whether a visit to `hostname` fails at the handshake (not served: no certificate for it). */
export const visitRefused = (port: number, hostname: string, ca: string): Promise<boolean> =>
  visit(port, hostname, ca).then(
    () => false,
    () => true,
  );

/** An origin that says who it is: `{"origin": name, "host": X-Forwarded-Host}` for every request. */
export interface NamedOrigin {
  readonly url: string;
  close(): Promise<void>;
}

export async function startNamedOrigin(name: string): Promise<NamedOrigin> {
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ origin: name, host: req.headers['x-forwarded-host'] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
