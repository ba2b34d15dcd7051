// The Portico dashboard: Preact components written with htm's tagged templates, loaded as ES
// modules through web/index.html's import map. No build step: this file is what the browser runs.
// Text is rendered by Preact, which escapes it; nothing here builds HTML from strings.
import htm from 'htm';
import { h, render } from 'preact';
import { useCallback, useEffect, useMemo, useState } from 'preact/hooks';

const html = htm.bind(h);

/** sessionStorage, not localStorage: the key goes when the tab closes, so a shared machine keeps none. */
const KEY_ITEM = 'portico.api-key';
/** Lists show one page; the API's maximum is 1000, and a dashboard that needs more needs search. */
const PAGE_SIZE = 100;
const POLL_MS = 2000;
const DAY_MS = 86_400_000;
/** Statuses the server is still working on: DNS checks (verifying), routing and certificate (verified). */
const POLLED = new Set(['verifying', 'verified']);
/** Statuses from which `verify` (re)starts the checks; verified and active domains keep theirs. */
const VERIFIABLE = new Set(['pending', 'verifying', 'failed', 'moved']);

const STATUS_HINTS = {
  pending: 'Create the DNS records below, then press Verify.',
  verifying: 'Looking for the ownership record in DNS. This page updates by itself.',
  verified: 'Ownership proven. Waiting for routing and the certificate.',
  active: 'Served over HTTPS.',
  failed: 'The records were not found before the deadline. Check them, then press Verify to try again.',
  moved: 'The records no longer prove ownership or no longer point here. Press Verify to check again.',
};

// ---- API ----------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const enc = encodeURIComponent;
const paths = {
  apps: '/v1/apps',
  app: (appId) => `/v1/apps/${enc(appId)}`,
  domains: (appId) => `/v1/apps/${enc(appId)}/domains`,
  domain: (appId, name) => `/v1/apps/${enc(appId)}/domains/${enc(name)}`,
};

/** One API call; answers the JSON body or throws an ApiError carrying the API's own message. */
async function request(key, method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'Cannot reach the Portico API. Check the connection and try again.');
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, errorMessage(response.status, data));
  return data;
}

/** ErrorResponse carries `error.message`; schema failures (422) carry FastAPI's `detail` list. */
function errorMessage(status, data) {
  if (typeof data?.error?.message === 'string') return data.error.message;
  if (Array.isArray(data?.detail)) {
    return data.detail
      .map((item) => `${(item.loc ?? []).slice(1).join('.') || 'request'}: ${item.msg}`)
      .join('; ');
  }
  return `The API answered ${status}.`;
}

// ---- Navigation: the location hash, so links, reloads and the back button work with one page --

const links = {
  apps: '#/',
  app: (appId) => `#/apps/${enc(appId)}`,
  domain: (appId, name) => `#/apps/${enc(appId)}/domains/${enc(name)}`,
};

function readRoute() {
  try {
    const [section, appId, sub, name] = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
    if (section === 'apps' && appId) return { appId, domain: sub === 'domains' ? name : undefined };
  } catch {
    // A malformed escape in a hand-typed address: show the apps list.
  }
  return {};
}

function useRoute() {
  const [route, setRoute] = useState(readRoute);
  useEffect(() => {
    const onChange = () => setRoute(readRoute());
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

// ---- State helpers ------------------------------------------------------------------------------

/** GETs `path` whenever it changes; `setData` applies local changes without another request. */
function useResource(call, path) {
  const [state, setState] = useState({ data: undefined, error: '' });
  useEffect(() => {
    let live = true;
    setState({ data: undefined, error: '' });
    call('GET', path).then(
      (data) => live && setState({ data, error: '' }),
      (error) => live && setState({ data: undefined, error: error.message }),
    );
    return () => {
      live = false;
    };
  }, [call, path]);
  const setData = useCallback((update) => setState((s) => ({ ...s, data: update(s.data) })), []);
  return { ...state, setData };
}

/** Runs an async action, tracking whether it is running and the message of its last failure. */
function useAction(action) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const run = async (...args) => {
    setBusy(true);
    setError('');
    try {
      await action(...args);
    } catch (failure) {
      setError(failure.message);
    } finally {
      setBusy(false);
    }
  };
  return { run, busy, error };
}

/** A form's submit handler: the action gets the form's fields; the form clears once it succeeds. */
function useFormAction(action) {
  const { run, busy, error } = useAction(async (form) => {
    await action(new FormData(form));
    form.reset();
  });
  const onSubmit = (event) => {
    event.preventDefault();
    run(event.currentTarget);
  };
  return { onSubmit, busy, error };
}

const text = (form, name) => String(form.get(name) ?? '').trim();

// ---- Small pieces -------------------------------------------------------------------------------

function ErrorMessage({ message }) {
  return message ? html`<p class="error" role="alert">${message}</p>` : null;
}

function StatusBadge({ status }) {
  return html`<span class=${`badge badge-${status}`}>${status}</span>`;
}

function Timestamp({ iso, empty = '—' }) {
  if (!iso) return html`<span class="muted">${empty}</span>`;
  return html`<time datetime=${iso} title=${iso}>${new Date(iso).toLocaleString()}</time>`;
}

/** A certificate's end as a date (UTC, unambiguous in every locale) and the days left. */
function Expiry({ certificate }) {
  const notAfter = certificate?.not_after;
  if (!notAfter) return html`<span class="muted">—</span>`;
  const days = Math.floor((Date.parse(notAfter) - Date.now()) / DAY_MS);
  const left = days < 0 ? 'expired' : `${days} ${days === 1 ? 'day' : 'days'} left`;
  return html`<span class="expiry">
    <time datetime=${notAfter} title=${notAfter}>${notAfter.slice(0, 10)}</time>
    ${' '}<span class=${days < 14 ? 'warn' : 'muted'}>(${left})</span>
  </span>`;
}

/** Copies `value`; the confirmation is visible and, as a status, read out by screen readers. */
function CopyButton({ value, label }) {
  const [outcome, setOutcome] = useState('');
  useEffect(() => {
    if (!outcome) return;
    const timer = setTimeout(() => setOutcome(''), 2500);
    return () => clearTimeout(timer);
  }, [outcome]);
  const copy = async () => {
    try {
      // Undefined outside secure contexts (plain HTTP on a non-loopback host): reported as a failure.
      await navigator.clipboard.writeText(value);
      setOutcome('Copied');
    } catch {
      setOutcome('Copy failed: select the text and copy it by hand');
    }
  };
  return html`<span class="copy">
    <button type="button" class="small" onClick=${copy} aria-label=${`Copy ${label}`}>Copy</button>
    <span role="status" class=${outcome === 'Copied' ? 'copied' : 'error'}>${outcome}</span>
  </span>`;
}

// ---- Screens ------------------------------------------------------------------------------------

function SignIn({ onSignIn, notice }) {
  const { onSubmit, busy, error } = useFormAction(async (form) => {
    const key = text(form, 'key');
    // A read any key may do: the API itself says whether the key is good.
    await request(key, 'GET', `${paths.apps}?limit=1`);
    onSignIn(key);
  });
  return html`<main class="signin">
    <h1>Portico</h1>
    <p class="muted">Custom domains for your apps. Sign in with an API key.</p>
    ${notice && html`<p class="notice" role="status">${notice}</p>`}
    <form onSubmit=${onSubmit} class="stack">
      <label for="api-key">API key</label>
      <input id="api-key" name="key" type="password" autocomplete="off" spellcheck="false" required />
      <p class="hint">Kept in this tab only, until it closes or you sign out.</p>
      <button type="submit" disabled=${busy}>Sign in</button>
      <${ErrorMessage} message=${error} />
    </form>
  </main>`;
}

function AppsPage({ call }) {
  const apps = useResource(call, `${paths.apps}?limit=${PAGE_SIZE}`);
  const create = useFormAction(async (form) => {
    const origin = text(form, 'origin_url');
    const app = await call('POST', paths.apps, {
      slug: text(form, 'slug'),
      meta: { title: text(form, 'title') },
      origin_url: origin || null,
    });
    location.hash = links.app(app.app_id);
  });

  return html`<h1>Apps</h1>
    <${ErrorMessage} message=${apps.error} />
    ${apps.data && html`<${AppsTable} page=${apps.data} />`}
    <section aria-labelledby="new-app">
      <h2 id="new-app">New app</h2>
      <form onSubmit=${create.onSubmit} class="grid">
        <label for="app-slug">Slug</label>
        <input id="app-slug" name="slug" required pattern="[a-z0-9][a-z0-9\\-]*[a-z0-9]" minlength="3"
          maxlength="60" placeholder="acme-search" autocomplete="off" spellcheck="false"
          aria-describedby="app-slug-hint" />
        <p id="app-slug-hint" class="hint">Lowercase letters, digits and hyphens; also the app's default hostname.</p>
        <label for="app-title">Title</label>
        <input id="app-title" name="title" required maxlength="200" placeholder="Acme search" />
        <label for="app-origin">Origin URL</label>
        <input id="app-origin" name="origin_url" type="url" placeholder="https://origin.acme.com"
          aria-describedby="app-origin-hint" />
        <p id="app-origin-hint" class="hint">Where the edge sends the app's traffic.</p>
        <div class="actions">
          <button type="submit" disabled=${create.busy}>Create app</button>
        </div>
        <${ErrorMessage} message=${create.error} />
      </form>
    </section>`;
}

function AppsTable({ page }) {
  if (page.results.length === 0) return html`<p class="muted">No apps yet. Create one below.</p>`;
  return html`<table>
      <thead>
        <tr><th scope="col">App</th><th scope="col">Default hostname</th><th scope="col">Origin</th></tr>
      </thead>
      <tbody>
        ${page.results.map(
          (app) => html`<tr key=${app.app_id}>
            <td><a href=${links.app(app.app_id)}>${app.meta.title}</a> <span class="muted">${app.slug}</span></td>
            <td><code>${app.default_hostname}</code></td>
            <td>${app.origin_url ? html`<code>${app.origin_url}</code>` : html`<span class="muted">none</span>`}</td>
          </tr>`,
        )}
      </tbody>
    </table>
    <${MoreNote} page=${page} />`;
}

function MoreNote({ page }) {
  const { total } = page.pagination;
  return page.pagination.has_next
    ? html`<p class="muted">Showing the first ${page.results.length} of ${total}.</p>`
    : null;
}

function AppPage({ call, appId, selected }) {
  const app = useResource(call, paths.app(appId));
  const domains = useResource(call, `${paths.domains(appId)}?limit=${PAGE_SIZE}`);
  const { setData } = domains;
  // The panel reports every fresh copy of its domain, so the table never shows an older status.
  const onDomainChange = useCallback(
    (domain) =>
      setData((page) => {
        if (!page) return page;
        const known = page.results.some((d) => d.domain === domain.domain);
        const results = known
          ? page.results.map((d) => (d.domain === domain.domain ? domain : d))
          : [...page.results, domain];
        return { ...page, results };
      }),
    [setData],
  );
  const add = useFormAction(async (form) => {
    const domain = await call('POST', paths.domains(appId), {
      domain: text(form, 'domain'),
      is_primary: form.get('is_primary') === 'on',
    });
    onDomainChange(domain);
    location.hash = links.domain(appId, domain.domain);
  });

  const title = app.data?.meta.title ?? appId;
  return html`<nav aria-label="Breadcrumb" class="crumbs"><a href=${links.apps}>Apps</a> / ${title}</nav>
    <${ErrorMessage} message=${app.error} />
    ${
      app.data &&
      html`<h1>${title}</h1>
        <p class="muted">
          <code>${app.data.default_hostname}</code>${app.data.origin_url && html` → <code>${app.data.origin_url}</code>`}
        </p>`
    }
    <section aria-labelledby="domains-title">
      <h2 id="domains-title">Domains</h2>
      <form onSubmit=${add.onSubmit} class="inline">
        <label for="new-domain">Domain</label>
        <input id="new-domain" name="domain" required placeholder="shop.example.com" autocomplete="off"
          spellcheck="false" />
        <label class="check"><input type="checkbox" name="is_primary" /> Primary</label>
        <button type="submit" disabled=${add.busy}>Add domain</button>
      </form>
      <${ErrorMessage} message=${add.error} />
      <${ErrorMessage} message=${domains.error} />
      ${domains.data && html`<${DomainsTable} appId=${appId} page=${domains.data} selected=${selected} />`}
    </section>
    ${
      selected &&
      html`<${DomainPanel}
        key=${selected}
        call=${call}
        appId=${appId}
        name=${selected}
        initial=${domains.data?.results.find((d) => d.domain === selected)}
        onChange=${onDomainChange}
      />`
    }`;
}

function DomainsTable({ appId, page, selected }) {
  if (page.results.length === 0) return html`<p class="muted">No domains yet.</p>`;
  return html`<table class="domains">
      <thead>
        <tr>
          <th scope="col">Domain</th>
          <th scope="col">Status</th>
          <th scope="col">Primary</th>
          <th scope="col">Certificate expires</th>
          <th scope="col">Last checked</th>
        </tr>
      </thead>
      <tbody>
        ${page.results.map(
          (d) => html`<tr key=${d.domain} class=${d.domain === selected ? 'selected' : ''}>
            <td>
              <a href=${links.domain(appId, d.domain)} aria-current=${d.domain === selected ? 'page' : undefined}
                >${d.domain}</a
              >
            </td>
            <td><${StatusBadge} status=${d.status} /></td>
            <td>${d.is_primary ? 'Primary' : ''}</td>
            <td><${Expiry} certificate=${d.certificate} /></td>
            <td><${Timestamp} iso=${d.last_checked_at} empty="never" /></td>
          </tr>`,
        )}
      </tbody>
    </table>
    <${MoreNote} page=${page} />`;
}

function DomainPanel({ call, appId, name, initial, onChange }) {
  const [domain, setDomain] = useState(initial);
  const [pollError, setPollError] = useState('');
  const [retries, setRetries] = useState(0);
  const path = paths.domain(appId, name);
  const update = useCallback(
    (next) => {
      setDomain(next);
      setPollError('');
      onChange(next);
    },
    [onChange],
  );
  const load = useAction(async () => update(await call('GET', path)));
  const verify = useAction(async () => update(await call('POST', `${path}/verify`)));

  // A fresh copy on opening (once: the panel is keyed by the domain's name): the list may be minutes
  // old, or not hold this domain at all.
  useEffect(() => {
    load.run();
  }, []);

  // Live status. While the server works on the domain, read it again every POLL_MS; one request at a
  // time (a timeout armed after each answer, not an interval), none once the status settles.
  useEffect(() => {
    if (!domain || !POLLED.has(domain.status)) return;
    let live = true;
    const timer = setTimeout(() => {
      call('GET', path).then(
        (next) => live && update(next),
        (error) => {
          if (!live) return;
          setPollError(error.message);
          // A removed domain stays removed; anything else (network, restart) is worth another try.
          if (error.status !== 404) setRetries((n) => n + 1);
        },
      );
    }, POLL_MS);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [call, path, domain, retries, update]);

  if (!domain) {
    return html`<section class="panel">
      <h2>${name}</h2>
      ${load.error ? html`<${ErrorMessage} message=${load.error} />` : html`<p class="muted">Loading…</p>`}
    </section>`;
  }
  const reasons = domain.verification_errors ?? [];
  // The live region holds the status and its reasons; the times change on every check, so they sit
  // outside it and screen readers are not interrupted every two seconds.
  return html`<section class="panel" aria-labelledby="domain-title">
    <h2 id="domain-title">${domain.domain}${domain.is_primary && html` <span class="tag">primary</span>`}</h2>

    <div class="status" role="status" aria-live="polite" aria-label="Domain status">
      <${StatusBadge} status=${domain.status} />
      <span>${STATUS_HINTS[domain.status] ?? ''}</span>
      ${
        reasons.length > 0 &&
        html`<ul class="reasons" aria-label="Why it is not verified yet">
          ${reasons.map((reason) => html`<li key=${reason.code}>${reason.message}</li>`)}
        </ul>`
      }
    </div>
    <dl class="facts">
      <dt>Last checked</dt>
      <dd><${Timestamp} iso=${domain.last_checked_at} empty="never" /></dd>
      <dt>Next check</dt>
      <dd><${Timestamp} iso=${domain.next_check_at} empty="none scheduled" /></dd>
      <dt>Verified</dt>
      <dd><${Timestamp} iso=${domain.verified_at} empty="not yet" /></dd>
    </dl>
    <div class="actions">
      ${
        VERIFIABLE.has(domain.status) &&
        html`<button type="button" onClick=${() => verify.run()} disabled=${verify.busy}>Verify</button>`
      }
      ${POLLED.has(domain.status) && html`<span class="muted">Updating every ${POLL_MS / 1000} seconds…</span>`}
    </div>
    <${ErrorMessage} message=${verify.error || pollError} />

    <h3>DNS records</h3>
    <p class="muted">Create these records at the domain's DNS provider.</p>
    <${DnsRecords} records=${domain.dns_records ?? []} />

    <h3>Certificate</h3>
    <${Certificate} certificate=${domain.certificate} />
  </section>`;
}

function DnsRecords({ records }) {
  return html`<table class="records">
    <thead>
      <tr><th scope="col">Type</th><th scope="col">Name</th><th scope="col">Value</th><th scope="col">For</th></tr>
    </thead>
    <tbody>
      ${records.map(
        (record) => html`<tr key=${`${record.type} ${record.name}`} data-type=${record.type}>
          <td>${record.type}</td>
          <td>
            <code class="record-name">${record.name}</code>
            <${CopyButton} value=${record.name} label=${`${record.type} record name`} />
          </td>
          <td>
            <code class="record-value">${record.value}</code>
            <${CopyButton} value=${record.value} label=${`${record.type} record value`} />
          </td>
          <td class="muted">${record.purpose}</td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

function Certificate({ certificate }) {
  if (!certificate) return html`<p class="muted">None yet: one is issued once the domain is verified.</p>`;
  return html`<dl class="facts certificate">
    <dt>Status</dt>
    <dd>${certificate.status}</dd>
    <dt>Issuer</dt>
    <dd>${certificate.issuer ?? '—'}</dd>
    <dt>Expires</dt>
    <dd><${Expiry} certificate=${certificate} /></dd>
    ${certificate.last_error && html`<dt>Last error</dt><dd class="error">${certificate.last_error}</dd>`}
  </dl>`;
}

// ---- The whole page -----------------------------------------------------------------------------

function Dashboard() {
  const [key, setKey] = useState(() => sessionStorage.getItem(KEY_ITEM));
  const [notice, setNotice] = useState('');
  const route = useRoute();

  const signIn = (newKey) => {
    sessionStorage.setItem(KEY_ITEM, newKey);
    setNotice('');
    setKey(newKey);
  };
  const signOut = useCallback((message = '') => {
    sessionStorage.removeItem(KEY_ITEM);
    setNotice(message);
    setKey(null);
  }, []);
  // Every call of the session; a key revoked meanwhile (401) ends the session with the API's reason.
  const call = useMemo(
    () =>
      key &&
      (async (method, path, body) => {
        try {
          return await request(key, method, path, body);
        } catch (error) {
          if (error.status === 401) signOut(error.message);
          throw error;
        }
      }),
    [key, signOut],
  );

  if (!call) return html`<${SignIn} onSignIn=${signIn} notice=${notice} />`;
  return html`<header class="topbar">
      <a href=${links.apps} class="brand">Portico</a>
      <button type="button" class="secondary" onClick=${() => signOut()}>Sign out</button>
    </header>
    <main>
      ${
        route.appId
          ? html`<${AppPage} key=${route.appId} call=${call} appId=${route.appId} selected=${route.domain} />`
          : html`<${AppsPage} call=${call} />`
      }
    </main>`;
}

render(html`<${Dashboard} />`, document.getElementById('root'));
