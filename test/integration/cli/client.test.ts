import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { PORTICO_BIN, runPortico, type ServedPortico, servePortico } from '../../helpers/process.js';
import { waitUntil } from '../../helpers/wait.js';

const KEY = 'cli-client-test-key-0123456789abcdef';
const APPS_DOMAIN = 'apps.portico.test';
const CNAME_TARGET = `cname.${APPS_DOMAIN}`;
const SPINNER_FRAMES = /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/;

/**
 * The API commands as a user runs them: `portico apps …` and `portico domains …` as real
 * processes, against a real `portico serve` (API, worker issuing from the local CA, edge) whose
 * DNS is a loopback server the tests change as a customer would change their zone.
 */
// Each command is a fresh Node process that loads the TypeScript sources: give a test of several
// commands more room than the default on a busy two-core machine.
describe('portico apps and domains, against a running Portico', { timeout: 180_000 }, () => {
  let dns: TestDnsServer;
  let server: ServedPortico;
  let url: string;
  /** The port the edge serves HTTPS on: a free one, so not 443. */
  let edgeHttpsPort: string;
  let cliEnv: Record<string, string>;

  const portico = (...args: string[]) => runPortico(args, cliEnv);
  const json = async (...args: string[]) => {
    const run = await portico(...args, '--json');
    expect(run.code, run.stderr).toBe(0);
    return JSON.parse(run.stdout);
  };
  const tokenOf = async (domain: string, app = 'shop-cli') =>
    (await json('domains', 'get', app, domain)).verification_token as string;
  const publishRecords = (domain: string, token: string) => {
    dns.set(`_mixpeek-verify.${domain}`, 'TXT', `mixpeek-site-verification=${token}`);
    dns.set(domain, 'CNAME', CNAME_TARGET);
  };

  beforeAll(async () => {
    dns = await startDnsServer();
    server = await servePortico({
      PORTICO_DNS_SERVERS: dns.address,
      PORTICO_APPS_DOMAIN: APPS_DOMAIN,
      PORTICO_TLS_ISSUER: 'internal',
      PORTICO_BOOTSTRAP_KEY: KEY,
    });
    url = server.url;
    edgeHttpsPort = String(await server.process.edgeHttpsPort());
    // NO_COLOR as a user may have it; output is not a terminal here anyway.
    cliEnv = { PORTICO_URL: url, PORTICO_API_KEY: KEY, NO_COLOR: '1' };
  });

  afterAll(async () => {
    await server?.close();
    await dns?.close();
  });

  it('creates an app, and lists and gets it by slug or id', async () => {
    const created = await portico('apps', 'create', 'shop-cli', '--title', 'Shop');
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain('Created app shop-cli');

    const list = await json('apps', 'list');
    const app = list.results.find((candidate: { slug: string }) => candidate.slug === 'shop-cli');
    expect(app).toMatchObject({ meta: { title: 'Shop' }, default_hostname: `shop-cli.${APPS_DOMAIN}` });
    expect(created.stdout).toContain(app.app_id);

    expect((await json('apps', 'get', 'shop-cli')).app_id).toBe(app.app_id);
    expect((await json('apps', 'get', app.app_id)).slug).toBe('shop-cli');
    const table = await portico('apps', 'list');
    expect(table.stdout).toMatch(/^APP ID\s+SLUG\s+TITLE/);
    expect(table.stdout).toMatch(new RegExp(`^${app.app_id}\\s+shop-cli\\s+Shop\\s`, 'm'));
  });

  it('adds a domain and prints the DNS records to create as a table; --json answers the API body', async () => {
    const added = await portico('domains', 'add', 'shop-cli', 'shop.example.com');
    expect(added.code, added.stderr).toBe(0);
    const token = await tokenOf('shop.example.com');
    const rows = added.stdout.split('\n');
    expect(rows.find((row) => row.trim().startsWith('TYPE'))).toMatch(/TYPE\s+NAME\s+VALUE/);
    expect(rows).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^\\s+TXT\\s+_mixpeek-verify\\.shop\\.example\\.com\\s+mixpeek-site-verification=${token}$`,
        ),
      ),
    );
    expect(rows).toContainEqual(
      expect.stringMatching(
        new RegExp(`^\\s+CNAME\\s+shop\\.example\\.com\\s+${CNAME_TARGET.replaceAll('.', '\\.')}$`),
      ),
    );

    const asJson = await json('domains', 'add', 'shop-cli', 'absent.example.com');
    expect(asJson).toMatchObject({ domain: 'absent.example.com', status: 'pending' });
    expect(asJson.dns_records).toContainEqual({
      type: 'TXT',
      name: '_mixpeek-verify.absent.example.com',
      value: `mixpeek-site-verification=${asJson.verification_token}`,
      purpose: 'ownership',
    });
    const listed = await json('domains', 'list', 'shop-cli');
    expect(listed.results.map((domain: { domain: string }) => domain.domain).sort()).toEqual([
      'absent.example.com',
      'shop.example.com',
    ]);
  });

  it("reports the API's errors by message and code, never a stack trace; usage errors exit 2", async () => {
    const badDomain = 'https://bad.example.com/path';
    const appId = (await json('apps', 'get', 'shop-cli')).app_id;
    const direct = await fetch(`${url}/v1/apps/${appId}/domains`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ domain: badDomain }),
    });
    const { error } = await direct.json();

    const bad = await portico('domains', 'add', 'shop-cli', badDomain);
    expect(bad.code).toBe(4);
    expect(bad.stderr).toContain(error.message);
    expect(bad.stderr).toContain(`[${error.code}]`);
    expect(bad.stderr + bad.stdout).not.toMatch(/^\s+at /m);

    const asJson = await portico('domains', 'add', 'shop-cli', badDomain, '--json');
    expect(asJson.code).toBe(4);
    expect(JSON.parse(asJson.stdout).error).toMatchObject({ code: error.code, status: 400 });

    const [missing, unknownApp, noKey, wrongKey] = await Promise.all([
      portico('domains', 'add', 'shop-cli'),
      portico('domains', 'list', 'no-such-app'),
      runPortico(['apps', 'list'], { PORTICO_URL: url, PORTICO_API_KEY: '' }),
      portico('apps', 'list', '--key', 'not-a-key'),
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('missing DOMAIN');
    expect(unknownApp.code).toBe(4);
    expect(unknownApp.stderr).toContain('app_not_found');
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain('PORTICO_API_KEY');
    expect(wrongKey.code).toBe(4);
    expect(wrongKey.stderr).toContain('invalid_api_key');
  });

  it('names the URL it could not reach', async () => {
    const closed = await closedPort();
    const run = await portico('apps', 'list', '--url', `http://127.0.0.1:${closed}`);
    expect(run.code).toBe(4);
    expect(run.stderr).toContain(`could not reach Portico at http://127.0.0.1:${closed}`);
    expect(run.stderr).not.toMatch(/^\s+at /m);
  });

  it('verify --wait follows a domain whose records exist to active, in plain lines off a terminal', async () => {
    publishRecords('shop.example.com', await tokenOf('shop.example.com'));
    const run = await portico(
      'domains',
      'verify',
      'shop-cli',
      'shop.example.com',
      '--wait',
      '--timeout',
      '50',
    );
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^\[\s*\d+s\] verified: ownership proven/m);
    expect(run.stdout).toMatch(/^\[\s*\d+s\] certificate issued/m);
    expect(run.stdout).toMatch(/^\[\s*\d+s\] active: served over HTTPS/m);
    // Where it is served, port included: the edge does not listen on 443 here.
    expect(run.stdout).toContain(
      `shop.example.com is active: https://shop.example.com:${edgeHttpsPort}/ serves shop-cli.`,
    );
    // Not a terminal: no spinner, no cursor movements, no colors.
    expect(run.stdout).not.toMatch(SPINNER_FRAMES);
    expect(run.stdout).not.toContain('\u001b[');
    expect((await json('domains', 'get', 'shop-cli', 'shop.example.com')).status).toBe('active');
  });

  it('verify --wait gives up after --timeout with exit code 3, having shown why the TXT record fails', async () => {
    const run = await portico(
      'domains',
      'verify',
      'shop-cli',
      'absent.example.com',
      '--wait',
      '--timeout',
      '3',
    );
    expect(run.code, run.stdout + run.stderr).toBe(3);
    expect(run.stdout).toMatch(/^\[\s*\d+s\] verifying/m);
    expect(run.stdout).toMatch(
      /✗ txt_not_found: No TXT record found: _mixpeek-verify\.absent\.example\.com does not exist\. Create TXT/,
    );
    expect(run.stderr).toContain('absent.example.com is still verifying after 3s');
  });

  it('check shows what DNS says now against what Portico expects, with the fix for what is wrong', async () => {
    const token = await tokenOf('absent.example.com');
    dns.set('_mixpeek-verify.absent.example.com', 'TXT', 'mixpeek-site-verification=stale');
    dns.set('absent.example.com', 'CNAME', CNAME_TARGET);

    const wrong = await portico('domains', 'check', 'shop-cli', 'absent.example.com', '--dns', dns.address);
    expect(wrong.code, wrong.stderr).toBe(1);
    const rows = wrong.stdout.split('\n');
    expect(rows).toContainEqual(expect.stringMatching(/^RECORD\s+EXPECTED\s+FOUND\s+OK$/));
    expect(rows).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^_mixpeek-verify\\.absent\\.example\\.com\\s+TXT mixpeek-site-verification=${token}\\s+TXT mixpeek-site-verification=stale\\s+no$`,
        ),
      ),
    );
    expect(rows).toContainEqual(
      expect.stringMatching(
        /^absent\.example\.com\s+CNAME cname\.apps\.portico\.test\s+CNAME cname\.apps\.portico\.test\s+yes$/,
      ),
    );
    expect(wrong.stdout).toContain('To fix:');
    expect(wrong.stdout).toContain(`✗ txt_mismatch: TXT _mixpeek-verify.absent.example.com has 1 value`);
    expect(wrong.stdout).toContain(`replace mixpeek-site-verification=stale, which holds another token`);

    publishRecords('absent.example.com', token);
    const right = await portico(
      'domains',
      'check',
      'shop-cli',
      'absent.example.com',
      '--dns',
      dns.address,
      '--json',
    );
    expect(right.code, right.stderr).toBe(0);
    const report = JSON.parse(right.stdout);
    expect(report).toMatchObject({ domain: 'absent.example.com', ok: true, servers: [dns.address] });
    expect(report.records).toEqual([
      expect.objectContaining({
        purpose: 'ownership',
        ok: true,
        found: [`TXT mixpeek-site-verification=${token}`],
      }),
      expect.objectContaining({ purpose: 'routing', ok: true, found: [`CNAME ${CNAME_TARGET}`] }),
      expect.objectContaining({ purpose: 'caa', ok: true, found: [] }),
    ]);
  });

  it('check shows the CAA records the CA will read, where they are, and whether they forbid it', async () => {
    const token = await tokenOf('absent.example.com');
    publishRecords('absent.example.com', token);
    dns.set('example.com', 'CAA', ['0 issue "digicert.com"', '0 iodef "mailto:security@example.com"']);
    try {
      const check = (...flags: string[]) =>
        portico('domains', 'check', 'shop-cli', 'absent.example.com', '--dns', dns.address, ...flags);
      // Without the CA's name, records naming some CA cannot be judged: shown, not failed.
      const unjudged = await check();
      expect(unjudged.code, unjudged.stdout + unjudged.stderr).toBe(0);
      expect(unjudged.stdout).toMatch(
        /^example\.com\s+no CAA record, or one allowing the CA .*CAA 0 issue "digicert\.com"\s+yes$/m,
      );

      const forbidden = await check('--ca', 'letsencrypt.org');
      expect(forbidden.code).toBe(1);
      expect(forbidden.stdout).toMatch(
        /^example\.com\s+no CAA record, or CAA 0 issue "letsencrypt\.org"\s+CAA 0 issue "digicert\.com"\s+no$/m,
      );
      expect(forbidden.stdout).toContain(
        '✗ caa_forbidden: CAA 0 issue "digicert.com" at example.com forbids letsencrypt.org for absent.example.com',
      );

      dns.add('example.com', 'CAA', '0 issue "letsencrypt.org"');
      const allowed = await check('--ca', 'letsencrypt.org', '--json');
      expect(allowed.code, allowed.stdout).toBe(0);
      expect(JSON.parse(allowed.stdout).records).toContainEqual(
        expect.objectContaining({ purpose: 'caa', name: 'example.com', ok: true, definitive: true }),
      );

      dns.fault('absent.example.com', 'servfail', 'CAA');
      const unanswered = await check('--ca', 'letsencrypt.org');
      expect(unanswered.code).toBe(4);
      expect(unanswered.stdout).toMatch(/^absent\.example\.com\s+.*no answer \(SERVFAIL\)\s+unknown$/m);
    } finally {
      dns.fault('absent.example.com', null, 'CAA');
      dns.remove('example.com', 'CAA');
    }
  });

  it('check DOMAIN --token needs no API at all', async () => {
    const token = await tokenOf('absent.example.com');
    const run = await runPortico(
      ['domains', 'check', 'absent.example.com', '--token', token, '--cname-target', CNAME_TARGET],
      // Nothing listens on the discard port, and no key: only DNS is asked.
      {
        PORTICO_URL: 'http://127.0.0.1:9',
        PORTICO_API_KEY: '',
        PORTICO_DNS_SERVERS: dns.address,
        NO_COLOR: '1',
      },
    );
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain(`asking ${dns.address}`);
    expect(run.stdout).toContain('DNS is set up right for absent.example.com');
  });

  it('removes a domain, which is then not found, and deletes the app', async () => {
    const removed = await portico('domains', 'remove', 'shop-cli', 'shop.example.com');
    expect(removed.code, removed.stderr).toBe(0);
    const gone = await portico('domains', 'get', 'shop-cli', 'shop.example.com');
    expect(gone.code).toBe(4);
    expect(gone.stderr).toContain('domain_not_found');
    const goneJson = await portico('domains', 'get', 'shop-cli', 'shop.example.com', '--json');
    expect(JSON.parse(goneJson.stdout).error).toMatchObject({ code: 'domain_not_found', status: 404 });

    const appId = (await json('apps', 'get', 'shop-cli')).app_id;
    const deleted = await portico('apps', 'delete', 'shop-cli');
    expect(deleted.code, deleted.stderr).toBe(0);
    const after = await portico('apps', 'get', appId);
    expect(after.code).toBe(4);
    expect(after.stderr).toContain('app_not_found');
    expect((await json('apps', 'list')).results).toEqual([]);
  });

  it('shows a spinner on a terminal while waiting, and leaves only the progress lines behind', async (context) => {
    if (spawnSync('tmux', ['-V']).status !== 0) {
      console.warn('skipping the terminal test of the spinner: tmux is not installed');
      context.skip();
    }
    await portico('apps', 'create', 'tty-cli');
    expect((await portico('domains', 'add', 'tty-cli', 'tty.example.com')).code).toBe(0);

    // A tmux server of our own (its own socket), so no one else's sessions are touched.
    const tmux = (...args: string[]) => spawnSync('tmux', ['-L', `portico-cli-test-${process.pid}`, ...args]);
    const screen = () => tmux('capture-pane', '-p', '-t', 'cli').stdout.toString();
    const env = Object.entries(cliEnv)
      .filter(([name]) => name !== 'NO_COLOR')
      .map(([name, value]) => `${name}=${shellQuote(value)}`);
    const command = [
      'env',
      ...env,
      shellQuote(process.execPath),
      shellQuote(PORTICO_BIN),
      'domains verify tty-cli tty.example.com --wait --timeout 120',
    ].join(' ');
    // `read` keeps the pane open after the command, so its last screen can be read.
    const started = tmux(
      'new-session',
      '-d',
      '-s',
      'cli',
      '-x',
      '200',
      '-y',
      '50',
      `${command}; echo "exit=$?"; read _`,
    );
    expect(started.status, started.stderr.toString()).toBe(0);
    try {
      // The spinner line: a frame, then the status, redrawn in place.
      await waitUntil(() => /^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] verifying: .*elapsed/m.test(screen()), 100);

      // The customer creates the records and asks again; the waiting command sees it through.
      publishRecords('tty.example.com', await tokenOf('tty.example.com', 'tty-cli'));
      const again = await portico('domains', 'verify', 'tty-cli', 'tty.example.com');
      expect(again.code, again.stderr).toBe(0);
      await waitUntil(() => screen().includes('exit='), 100);

      const final = screen();
      expect(final).toContain('exit=0');
      expect(final).toMatch(/^\[\s*\d+s\] active: served over HTTPS/m);
      expect(final).toContain('tty.example.com is active');
      // The spinner's line was cleared: no frame is left on the screen.
      expect(final).not.toMatch(SPINNER_FRAMES);
    } finally {
      tmux('kill-server');
    }
  });
});

/** A port nothing listens on: bound by us, then released. */
async function closedPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}
