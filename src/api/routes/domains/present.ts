import type { Domain } from '../../../store/store.js';
import type { ApiContext } from '../../context.js';
import { toDomainResponse } from '../../presenters.js';
import type { DomainResponse } from '../../schemas/domains.js';

/** One domain as the API answers it, with its certificate's state. */
export async function presentDomain(
  { domains, config }: ApiContext,
  domain: Domain,
): Promise<DomainResponse> {
  return toDomainResponse(domain, config, (await domains.certificatesOf([domain])).get(domain.id));
}
