import { findApp } from './app-ref.js';
import type { App } from './client.js';
import {
  CONNECTION_HELP,
  connect,
  expectArguments,
  integerOption,
  parseCommand,
  runGroup,
} from './command.js';
import { paintStatus } from './domain-view.js';
import { EXIT } from './errors.js';
import type { Output } from './output.js';
import { confirm } from './prompt.js';

const USAGE = `Usage: portico apps <command> [options]

Commands:
  create SLUG [--title TITLE] [--description TEXT] [--origin URL]
                        create an app; it answers at once on SLUG.<apps domain>
  list [--limit N] [--offset N]
                        list your organization's apps
  get APP               show an app and its domains (APP is an app id or a slug)
  delete APP [--yes]    delete an app; its domains stop being served at once

${CONNECTION_HELP}`;

/** `portico apps …` */
export function apps(argv: string[]): Promise<number> {
  return runGroup({ name: 'apps', usage: USAGE, commands: { create, list, get, delete: remove } }, argv);
}

async function create(args: string[], out: Output): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    title: { type: 'string' },
    description: { type: 'string' },
    origin: { type: 'string' },
  });
  const [slug] = expectArguments(positionals, ['SLUG']);
  const app = await connect(values).createApp({
    slug,
    // The API requires a title; the slug is a fair one until someone sets a better one.
    meta: { title: values.title ?? slug, description: values.description },
    origin_url: values.origin,
  });
  if (out.json) {
    out.printJson(app);
    return EXIT.ok;
  }
  out.line(`Created app ${out.style.bold(app.slug)} (${app.app_id}).`);
  out.line();
  printApp(out, app);
  out.line();
  out.line(`Next: portico domains add ${app.slug} DOMAIN`);
  return EXIT.ok;
}

async function list(args: string[], out: Output): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    limit: { type: 'string' },
    offset: { type: 'string' },
  });
  expectArguments(positionals, []);
  const page = await connect(values).listApps({
    limit: integerOption(values.limit, 'limit'),
    offset: integerOption(values.offset, 'offset'),
  });
  if (out.json) {
    out.printJson(page);
    return EXIT.ok;
  }
  if (page.pagination.total === 0) {
    out.line('No apps yet. Create one with: portico apps create SLUG');
    return EXIT.ok;
  }
  out.table(
    ['APP ID', 'SLUG', 'TITLE', 'HOSTNAME', 'ORIGIN'],
    page.results.map((app) => [
      app.app_id,
      app.slug,
      app.meta.title,
      app.default_hostname,
      app.origin_url ?? '-',
    ]),
  );
  out.pageFooter(page.results.length, page.pagination, 'apps');
  return EXIT.ok;
}

async function get(args: string[], out: Output): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  const [ref] = expectArguments(positionals, ['APP']);
  const client = connect(values);
  const app = await findApp(client, ref);
  if (out.json) {
    out.printJson(app);
    return EXIT.ok;
  }
  const domains = await client.listDomains(app.app_id, { limit: 1000 });
  out.line(`${out.style.bold(app.slug)} (${app.app_id})`);
  printApp(out, app);
  out.line();
  if (domains.results.length === 0) {
    out.line(`No custom domains. Add one with: portico domains add ${app.slug} DOMAIN`);
    return EXIT.ok;
  }
  out.table(
    ['DOMAIN', 'STATUS', 'PRIMARY'],
    domains.results.map((domain) => [
      domain.domain,
      paintStatus(out.style, domain.status),
      domain.is_primary ? 'yes' : '',
    ]),
  );
  out.pageFooter(domains.results.length, domains.pagination, 'domains');
  return EXIT.ok;
}

async function remove(args: string[], out: Output): Promise<number> {
  const { values, positionals } = parseCommand(args, { yes: { type: 'boolean', short: 'y' } });
  const [ref] = expectArguments(positionals, ['APP']);
  const client = connect(values);
  const app = await findApp(client, ref);
  const { total } = (await client.listDomains(app.app_id, { limit: 1 })).pagination;
  const domains = total === 0 ? 'no custom domains' : `${total} custom domain${total === 1 ? '' : 's'}`;
  await confirm(
    `Delete app ${app.slug} (${app.app_id}) with ${domains}? They stop being served at once.`,
    values.yes === true,
  );
  const deleted = await client.deleteApp(app.app_id);
  if (out.json) out.printJson(deleted);
  else out.line(deleted.message);
  return EXIT.ok;
}

function printApp(out: Output, app: App): void {
  const fields: [string, string][] = [
    ['title', app.meta.title],
    ['hostname', app.default_hostname],
    ['origin', app.origin_url ?? out.style.dim('none (set one with the API: PATCH /v1/apps/{app_id})')],
    ['created', app.created_at],
  ];
  if (app.meta.description) fields.splice(1, 0, ['description', app.meta.description]);
  out.fields(fields);
}
