import type { App, PorticoClient } from './client.js';
import { CliError, EXIT } from './errors.js';

/*
 * Commands take an app as its id (`app_abc123def456`) or its slug: people remember slugs, the API
 * wants ids. A slug never starts with `app_` (slugs have no underscore), so the two cannot clash.
 */

const isAppId = (ref: string) => ref.startsWith('app_');

/** The app with this id or slug; a slug is looked up among the organization's apps. */
export async function findApp(client: PorticoClient, ref: string): Promise<App> {
  if (isAppId(ref)) return client.getApp(ref);
  const slug = ref.toLowerCase();
  for (let offset = 0; ; ) {
    const page = await client.listApps({ limit: 1000, offset });
    const app = page.results.find((candidate) => candidate.slug === slug);
    if (app) return app;
    if (!page.pagination.has_next || page.results.length === 0) break;
    offset += page.results.length;
  }
  throw new CliError(`no app with id or slug "${ref}" in your organization`, EXIT.api, {
    code: 'app_not_found',
    status: 404,
  });
}

/** The id of the app `ref` names, without a request when it is an id already. */
export async function resolveAppId(client: PorticoClient, ref: string): Promise<string> {
  return isAppId(ref) ? ref : (await findApp(client, ref)).app_id;
}
