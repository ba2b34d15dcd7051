// The Portico dashboard: Preact components written with htm's tagged templates, loaded as ES
// modules through web/index.html's import map. No build step: these files are what the browser runs
// (this one, api.js, ui.js and domain-panel.js; src/api/routes/system/dashboard.ts serves each).
// Text is rendered by Preact, which escapes it; nothing here builds HTML from strings.
import { render } from 'preact';
import { useCallback, useEffect, useMemo, useState } from 'preact/hooks';
import { links, paths, request } from './api.js';
import { DomainPanel, DomainStatus, REFRESH_MS } from './domain-panel.js';
import {
  ConfirmDialog,
  ErrorMessage,
  Expiry,
  html,
  Timestamp,
  text,
  useFormAction,
  usePolling,
  useResource,
} from './ui.js';

/** sessionStorage, not localStorage: the key goes when the tab closes, so a shared machine keeps none. */
const KEY_ITEM = 'portico.api-key';
/** Lists show one page; the API's maximum is 1000, and a dashboard that needs more needs search. */
const PAGE_SIZE = 100;

// ---- Navigation: the location hash, so links, reloads and the back button work with one page --

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
  return html`<table class="apps">
      <thead>
        <tr><th scope="col">App</th><th scope="col">Default hostname</th><th scope="col">Origin</th></tr>
      </thead>
      <tbody>
        ${page.results.map(
          (app) => html`<tr key=${app.app_id}>
            <td data-label="App">
              <a href=${links.app(app.app_id)}>${app.meta.title}</a> <span class="muted">${app.slug}</span>
            </td>
            <td data-label="Hostname"><code>${app.default_hostname}</code></td>
            <td data-label="Origin">
              ${app.origin_url ? html`<code>${app.origin_url}</code>` : html`<span class="muted">none</span>`}
            </td>
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

/** `page` with `domain` in place of its older copy (or added); `page` itself when none was loaded. */
function withDomain(page, domain) {
  if (!page) return page;
  const known = page.results.some((d) => d.domain === domain.domain);
  if (known) return { ...page, results: page.results.map((d) => (d.domain === domain.domain ? domain : d)) };
  return counted({ ...page, results: [...page.results, domain] }, +1);
}

/** `page` without the domain `name`; `page` itself when none was loaded. */
function withoutDomain(page, name) {
  if (!page?.results.some((d) => d.domain === name)) return page;
  return counted({ ...page, results: page.results.filter((d) => d.domain !== name) }, -1);
}

/** The total follows local changes too: the App's deletion dialog says how many domains it ends. */
const counted = (page, change) => ({
  ...page,
  pagination: { ...page.pagination, total: page.pagination.total + change },
});

function AppPage({ call, appId, selected }) {
  const app = useResource(call, paths.app(appId));
  const listPath = `${paths.domains(appId)}?limit=${PAGE_SIZE}`;
  const domains = useResource(call, listPath);
  const { setData } = domains;
  const [deleting, setDeleting] = useState(false);
  // The panel reports every fresh copy of its domain, so the table never shows an older status.
  const onDomainChange = useCallback((domain) => setData((page) => withDomain(page, domain)), [setData]);
  const onDomainRemoved = useCallback(
    (name) => {
      setData((page) => withoutDomain(page, name));
      location.hash = links.app(appId);
    },
    [setData, appId],
  );
  // The list is read again now and then, so every row's status stays current (a domain failing its
  // checks shows up without a reload). The open domain's row keeps the panel's copy: the panel reads
  // it more often, and a list read overlapping its last answer may be older.
  usePolling(async (isLive) => {
    // A failed read keeps the last copy: the panel and the next read report a lasting problem.
    const page = await call('GET', listPath).catch(() => undefined);
    if (!page || !isLive()) return;
    setData((old) => {
      const open = old?.results.find((d) => d.domain === selected);
      return open && page.results.some((d) => d.domain === selected) ? withDomain(page, open) : page;
    });
  }, REFRESH_MS);
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
        onRemoved=${onDomainRemoved}
      />`
    }
    ${
      app.data &&
      html`<section aria-labelledby="delete-app-title" class="danger-zone">
        <h2 id="delete-app-title">Delete this app</h2>
        <p class="muted">Deletes the app and all of its domains; the edge stops serving them at once.</p>
        <button type="button" class="secondary danger" onClick=${() => setDeleting(true)}>Delete app</button>
      </section>`
    }
    ${
      deleting &&
      html`<${DeleteAppDialog}
        call=${call}
        app=${app.data}
        domainCount=${domains.data?.pagination.total}
        onClose=${() => setDeleting(false)}
      />`
    }`;
}

/** Deleting an App ends every domain it serves, so the confirmation asks for its slug, typed. */
function DeleteAppDialog({ call, app, domainCount, onClose }) {
  const [typed, setTyped] = useState('');
  const served =
    domainCount === undefined
      ? 'its domains'
      : `its ${domainCount} custom ${domainCount === 1 ? 'domain' : 'domains'}`;
  return html`<${ConfirmDialog}
    title=${`Delete ${app.meta.title}?`}
    confirmLabel="Delete app"
    ready=${typed.trim() === app.slug}
    onConfirm=${async () => {
      await call('DELETE', paths.app(app.app_id));
      location.hash = links.apps;
    }}
    onClose=${onClose}
  >
    <p>
      The edge stops serving <code>${app.default_hostname}</code> and ${served} at once. This cannot be
      undone.
    </p>
    <label for="confirm-slug">Type the app's slug, <code>${app.slug}</code>, to confirm</label>
    <input id="confirm-slug" autofocus autocomplete="off" spellcheck="false" value=${typed}
      onInput=${(event) => setTyped(event.currentTarget.value)} />
  <//>`;
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
            <td data-label="Domain">
              <a href=${links.domain(appId, d.domain)} aria-current=${d.domain === selected ? 'page' : undefined}
                >${d.domain}</a
              >
            </td>
            <td data-label="Status"><${DomainStatus} domain=${d} /></td>
            <td data-label="Primary">${d.is_primary ? 'Primary' : ''}</td>
            <td data-label="Certificate"><${Expiry} certificate=${d.certificate} /></td>
            <td data-label="Checked"><${Timestamp} iso=${d.last_checked_at} empty="never" /></td>
          </tr>`,
        )}
      </tbody>
    </table>
    <${MoreNote} page=${page} />`;
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
