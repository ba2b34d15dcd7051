import { InternalIssuer } from '../../../acme/internal-issuer.js';
import { errors } from '../../../domain/errors.js';
import type { Api, ApiContext } from '../../context.js';

/**
 * The local CA's root certificate, for people who want their browser or `curl --cacert` to trust
 * what the internal issuer signs. Public by nature (a root certificate holds no secret), so it
 * needs no key.
 */
export function tlsRoot(api: Api, { issuer }: ApiContext): void {
  api.get('/tls/root.pem', { schema: { hide: true } }, async (_request, reply) => {
    if (!(issuer instanceof InternalIssuer)) throw errors.internalCaDisabled();
    return reply
      .type('application/x-pem-file')
      .header('content-disposition', 'attachment; filename="portico-root.pem"')
      .send(issuer.rootCertificatePem());
  });
}
