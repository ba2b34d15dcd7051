import { lookup as dnsLookup } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { buildConnector } from 'undici';
import { isPrivateAddress } from './private-address.js';

/**
 * Outbound connections to addresses a tenant chose (an App's origin, a webhook's URL) must not
 * reach the platform's own network (SSRF). The check is made on the address actually connected to,
 * after DNS resolution, so a name that resolves differently from one connection to the next (DNS
 * rebinding) cannot slip through a check made earlier.
 */
/**
 * The error a connection to a private address fails with (the edge answers 502; a webhook delivery
 * fails, and its message is the delivery's `last_error`, which the tenant reads). The message names
 * only the host the tenant wrote, never the address it resolved to: that would tell a tenant what
 * the platform's internal names resolve to. `address` keeps it for the operator's logs.
 */
export class PrivateOriginError extends Error {
  readonly code = 'PORTICO_PRIVATE_ORIGIN';

  constructor(
    hostname: string,
    readonly address: string | undefined,
  ) {
    super(`the address of ${hostname} is not allowed (a private or reserved address)`);
  }
}

/**
 * `lookup` for tenant-chosen connections: resolves as usual, then keeps only public addresses. Node
 * connects only to what this returns, so the check holds for the address actually connected to,
 * however the name resolves from one connection to the next.
 */
const publicAddressesOnly: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, options, (error, address, family) => {
    if (error !== null) {
      callback(error, address, family);
    } else if (typeof address === 'string') {
      if (isPrivateAddress(address)) callback(new PrivateOriginError(hostname, address), '', 0);
      else callback(null, address, family);
    } else {
      const allowed = address.filter((candidate) => !isPrivateAddress(candidate.address));
      if (allowed.length === 0) callback(new PrivateOriginError(hostname, address[0]?.address), []);
      else callback(null, allowed);
    }
  });
};

/** Node skips `lookup` for IP literals, so a URL like `http://10.0.0.5` is checked here. */
function refusePrivateLiterals(connect: buildConnector.connector): buildConnector.connector {
  return (options, callback) => {
    if (isIP(options.hostname) !== 0 && isPrivateAddress(options.hostname)) {
      callback(new PrivateOriginError(options.hostname, options.hostname), null);
      return;
    }
    connect(options, callback);
  };
}

/** An undici connector with the guard on (unless `allowPrivate`) and a connect timeout. */
export function guardedConnector(options: {
  timeoutMs?: number;
  allowPrivate: boolean;
  /** false: TLS peers are not authenticated, for answers that carry their own proof (routing-proof.ts). */
  rejectUnauthorized?: boolean;
}): buildConnector.connector {
  const connect = buildConnector({
    timeout: options.timeoutMs,
    ...(options.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}),
    ...(options.allowPrivate ? {} : { lookup: publicAddressesOnly }),
  });
  return options.allowPrivate ? connect : refusePrivateLiterals(connect);
}
