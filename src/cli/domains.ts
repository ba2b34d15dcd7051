import { resolveAppId } from './app-ref.js';
import { checkDomain } from './check.js';
import {
  CONNECTION_HELP,
  connect,
  expectArguments,
  integerOption,
  parseCommand,
  runGroup,
} from './command.js';
import { paintStatus, printDnsRecords, printDomain } from './domain-view.js';
import { EXIT } from './errors.js';
import type { Output } from './output.js';
import { confirm } from './prompt.js';
import { verifyDomain } from './verify.js';

const USAGE = `Usage: portico domains <command> [options]

APP is an app id (app_…) or the app's slug.

Commands:
  add APP DOMAIN [--primary]      add a custom domain and print the DNS records to create
  list APP [--limit N] [--offset N]
                                  list an app's domains
  get APP DOMAIN                  show a domain: status, records, last check, certificate
  remove APP DOMAIN [--yes]       remove a domain; it stops being served at once
  verify APP DOMAIN [--wait] [--timeout SECONDS]
                                  ask Portico to check DNS now; with --wait, follow the domain
                                  until it is active (exit 0), failed or moved (exit 1), or
                                  the timeout passes (exit 3; default 300 s)
  check APP DOMAIN [--dns HOST:PORT] [--ca NAME]
  check DOMAIN --token TOKEN [--cname-target HOST] [--dns HOST:PORT] [--ca NAME]
                                  query DNS now and compare with the records Portico expects
                                  (servers: --dns, else $PORTICO_DNS_SERVERS, else the system's);
                                  CAA too: whether the CA may issue for the domain (--ca: the
                                  CA's name in CAA records, e.g. letsencrypt.org)

Exit codes: 0 done (or active, or all records right), 1 failed or moved (or a record is wrong),
2 usage error, 3 timeout, 4 API, network or DNS error.

${CONNECTION_HELP}`;

/** `portico domains …` */
export function domains(argv: string[]): Promise<number> {
  return runGroup(
    {
      name: 'domains',
      usage: USAGE,
      commands: {
        add,
        list,
        get,
        remove,
        verify: (args, out) => verifyDomain(args, out),
        check: (args, out) => checkDomain(args, out),
      },
    },
    argv,
  );
}

async function add(args: string[], out: Output): Promise<number> {
  const { values, positionals } = parseCommand(args, { primary: { type: 'boolean' } });
  const [appRef, name] = expectArguments(positionals, ['APP', 'DOMAIN']);
  const client = connect(values);
  const domain = await client.addDomain(await resolveAppId(client, appRef), {
    domain: name,
    is_primary: values.primary === true,
  });
  if (out.json) {
    out.printJson(domain);
    return EXIT.ok;
  }
  const { style } = out;
  out.line(`Added ${style.bold(domain.domain)} to ${appRef} (status: ${paintStatus(style, domain.status)}).`);
  out.line();
  out.line('Create these DNS records at your DNS provider:');
  out.line();
  printDnsRecords(out, domain.domain, domain.dns_records ?? []);
  out.line();
  out.line('The TXT record proves the domain is yours; the other one sends its visitors here.');
  out.line(`Then run: portico domains verify ${appRef} ${domain.domain} --wait`);
  return EXIT.ok;
}

async function list(args: string[], out: Output): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    limit: { type: 'string' },
    offset: { type: 'string' },
  });
  const [appRef] = expectArguments(positionals, ['APP']);
  const client = connect(values);
  const page = await client.listDomains(await resolveAppId(client, appRef), {
    limit: integerOption(values.limit, 'limit'),
    offset: integerOption(values.offset, 'offset'),
  });
  if (out.json) {
    out.printJson(page);
    return EXIT.ok;
  }
  if (page.pagination.total === 0) {
    out.line(`No custom domains on ${appRef}. Add one with: portico domains add ${appRef} DOMAIN`);
    return EXIT.ok;
  }
  out.table(
    ['DOMAIN', 'STATUS', 'PRIMARY', 'CERTIFICATE', 'LAST CHECK'],
    page.results.map((domain) => [
      domain.domain,
      paintStatus(out.style, domain.status),
      domain.is_primary ? 'yes' : '',
      domain.certificate?.status ?? '-',
      domain.last_checked_at ?? '-',
    ]),
  );
  out.pageFooter(page.results.length, page.pagination, 'domains');
  return EXIT.ok;
}

async function get(args: string[], out: Output): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  const [appRef, name] = expectArguments(positionals, ['APP', 'DOMAIN']);
  const client = connect(values);
  const domain = await client.getDomain(await resolveAppId(client, appRef), name);
  if (out.json) out.printJson(domain);
  else printDomain(out, domain);
  return EXIT.ok;
}

async function remove(args: string[], out: Output): Promise<number> {
  const { values, positionals } = parseCommand(args, { yes: { type: 'boolean', short: 'y' } });
  const [appRef, name] = expectArguments(positionals, ['APP', 'DOMAIN']);
  const client = connect(values);
  const appId = await resolveAppId(client, appRef);
  await confirm(`Remove ${name} from ${appRef}? It stops being served at once.`, values.yes === true);
  const removed = await client.removeDomain(appId, name);
  if (out.json) out.printJson(removed);
  else out.line(removed.message);
  return EXIT.ok;
}
