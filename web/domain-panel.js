// One domain, opened from its App's page: its status and what it lacks, the DNS records to create,
// its certificate, and its removal. It keeps itself current by reading the domain again.
import { useCallback, useEffect, useState } from 'preact/hooks';
import { paths } from './api.js';
// The server's table of statuses (src/domain/lifecycle.ts), served as a module it writes at start.
import { STATUSES } from './statuses.js';
import {
  ConfirmDialog,
  CopyButton,
  ErrorMessage,
  Expiry,
  html,
  StatusBadge,
  Timestamp,
  useAction,
  usePolling,
} from './ui.js';

/** While the server works on a domain (DNS checks, then routing and certificate), it is read this often. */
const POLL_MS = 2000;
/**
 * An active domain changes only when it is re-checked (every few hours; every 10 minutes while its
 * checks fail), so it is read far less often, but still read: a failing check must show up.
 */
export const REFRESH_MS = 15_000;
/**
 * How soon the open domain is read again: often while the server works on it, now and then while
 * its checks watch it, and never for statuses that change only when someone acts.
 */
function refreshDelay(status) {
  const traits = STATUSES[status];
  if (traits?.polled) return POLL_MS;
  return traits?.checked ? REFRESH_MS : null;
}

const STATUS_HINTS = {
  pending: 'Create the DNS records below, then press Verify.',
  verifying: 'Looking for the ownership record in DNS. This page updates by itself.',
  verified: 'Ownership proven. Waiting for routing and the certificate.',
  active: 'Served over HTTPS.',
  failed: 'The records were not found before the deadline. Check them, then press Verify to try again.',
  moved: 'The records no longer prove ownership or no longer point here. Press Verify to check again.',
};

/**
 * What is wrong with an active domain's re-checks, or null when nothing is. `counted`: the last
 * check got a wrong answer from DNS, one of the `limit` in a row that make the domain `moved` (no
 * longer served); otherwise DNS did not answer (SERVFAIL, timeout), which never counts. `failures`:
 * the definitive failures in a row so far, an inconclusive check neither adding nor resetting.
 */
export function recheckTrouble(domain) {
  if (!STATUSES[domain.status]?.served) return null;
  const errors = domain.verification_errors ?? [];
  const failures = domain.reverify_failures ?? 0;
  if (errors.length === 0 && failures === 0) return null;
  return { failures, limit: domain.moved_after_failures, counted: errors.some((e) => e.definitive) };
}

/** The status badge, amber instead of green while an active domain's checks fail, and a word on why. */
export function DomainStatus({ domain }) {
  const trouble = recheckTrouble(domain);
  if (!trouble) return html`<${StatusBadge} status=${domain.status} />`;
  return html`<span class="badges">
    <span class="badge badge-active troubled">${domain.status}</span>
    <span class="badge badge-trouble">${trouble.counted ? 'checks failing' : 'DNS not answering'}</span>
  </span>`;
}

/** "If it fails too" when one more failure ends serving, else how many more would. */
function whatEndsServing(remaining) {
  if (remaining <= 1) return 'If it fails too, the domain stops being served.';
  const after = remaining === 2 ? 'the check after it' : `the ${remaining - 1} checks after it`;
  return `If it and ${after} fail too, the domain stops being served.`;
}

/**
 * The warning of an active domain whose checks fail: it is still served, how many failures in a row
 * it has left, what to fix (the API's sentences) and when the check that may end it runs.
 */
function RecheckWarning({ domain, trouble }) {
  const { failures, limit, counted } = trouble;
  const reasons = domain.verification_errors ?? [];
  const next = html`<strong>Next check: <${Timestamp} iso=${domain.next_check_at} empty="none scheduled" /></strong>`;
  return html`<div class=${`trouble ${counted ? 'trouble-counted' : 'trouble-inconclusive'}`}>
    ${
      counted
        ? html`<p>
            <strong>Failed checks in a row: ${failures} of ${limit}.</strong> After ${limit}, the domain
            becomes <em>moved</em> and is no longer served.
          </p>`
        : html`<p>
            <strong>DNS did not answer the last check.</strong> That does not count against the domain.
            ${failures > 0 && ` Before it, ${failures} of ${limit} checks in a row failed.`}
          </p>`
    }
    ${
      reasons.length > 0 &&
      html`<p>${counted ? 'Fix this to keep it served:' : 'What DNS said:'}</p>
        <ul class="reasons" aria-label=${counted ? 'What to fix' : 'Why the check was not completed'}>
          ${reasons.map((reason) => html`<li key=${reason.code}>${reason.message}</li>`)}
        </ul>`
    }
    <p>${next}.${failures > 0 ? ` ${whatEndsServing(limit - failures)}` : ''}</p>
  </div>`;
}

export function DomainPanel({ call, appId, name, initial, onChange, onRemoved }) {
  const [domain, setDomain] = useState(initial);
  const [pollError, setPollError] = useState('');
  const [removing, setRemoving] = useState(false);
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

  // Live status, at the pace its status calls for (refreshDelay).
  usePolling(
    async (isLive) => {
      try {
        const next = await call('GET', path);
        if (isLive()) update(next);
      } catch (error) {
        if (!isLive()) return;
        setPollError(error.message);
        // A removed domain stays removed; anything else (network, restart) is worth another try.
        return error.status !== 404;
      }
    },
    domain ? refreshDelay(domain.status) : null,
  );

  if (!domain) {
    return html`<section class="panel">
      <h2>${name}</h2>
      ${load.error ? html`<${ErrorMessage} message=${load.error} />` : html`<p class="muted">Loading…</p>`}
    </section>`;
  }
  const reasons = domain.verification_errors ?? [];
  const trouble = recheckTrouble(domain);
  const hint = trouble
    ? trouble.counted
      ? 'Still served over HTTPS, but its DNS records no longer pass the checks.'
      : 'Served over HTTPS. The last check could not be completed.'
    : (STATUS_HINTS[domain.status] ?? '');
  // The live region holds the status and its reasons; the times change on every check, so they sit
  // outside it and screen readers are not interrupted every two seconds (a failing active domain's
  // next check, inside it, changes only with a check, every ten minutes).
  return html`<section class="panel" aria-labelledby="domain-title">
    <h2 id="domain-title">${domain.domain}${domain.is_primary && html` <span class="tag">primary</span>`}</h2>

    <div class="status" role="status" aria-live="polite" aria-label="Domain status">
      <${DomainStatus} domain=${domain} />
      <span>${hint}</span>
      ${
        trouble
          ? html`<${RecheckWarning} domain=${domain} trouble=${trouble} />`
          : reasons.length > 0 &&
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
        STATUSES[domain.status]?.verifiable &&
        html`<button type="button" onClick=${() => verify.run()} disabled=${verify.busy}>Verify</button>`
      }
      ${refreshDelay(domain.status) === POLL_MS && html`<span class="muted">Updating every ${POLL_MS / 1000} seconds…</span>`}
      <button type="button" class="secondary danger push-end" onClick=${() => setRemoving(true)}>
        Remove domain
      </button>
    </div>
    <${ErrorMessage} message=${verify.error || pollError} />
    ${
      removing &&
      html`<${ConfirmDialog}
        title=${`Remove ${domain.domain}?`}
        confirmLabel="Remove domain"
        onConfirm=${async () => {
          await call('DELETE', path);
          onRemoved(domain.domain);
        }}
        onClose=${() => setRemoving(false)}
      >
        <p>
          The edge stops serving <strong>${domain.domain}</strong> at once, and its checks stop. To use it
          again, add it again and prove ownership with a new TXT record.
        </p>
      <//>`
    }

    <h3>DNS records</h3>
    <p class="muted">Create these records at the domain's DNS provider.</p>
    <${DnsRecords} records=${domain.dns_records ?? []} />

    <h3>Certificate</h3>
    <${Certificate} certificate=${domain.certificate} />

    ${
      domain.serving &&
      html`<h3>What visitors get</h3>
        <${Serving} serving=${domain.serving} />`
    }
  </section>`;
}

/**
 * The last serving probe: per edge address, whether it presented the current certificate and
 * answered through to the origin, or why not. It never changes the status; a failing edge is
 * the platform's to fix, and the domain's webhooks got domain.degraded.
 */
function Serving({ serving }) {
  const failing = serving.edges.filter((edge) => !edge.ok).length;
  return html`<div class="serving">
    <p class=${serving.ok ? 'muted' : 'error'} role=${serving.ok ? undefined : 'alert'}>
      ${
        serving.ok
          ? `Served as it should be at every edge (${serving.edges.length}).`
          : `Failing at ${failing} of ${serving.edges.length} edges: visitors there get an error or an old certificate.`
      }
      ${' '}Probed <${Timestamp} iso=${serving.checked_at} />.
    </p>
    <table class="records edges">
      <thead>
        <tr><th scope="col">Edge</th><th scope="col">Result</th><th scope="col">HTTP</th><th scope="col">Certificate</th></tr>
      </thead>
      <tbody>
        ${serving.edges.map(
          (edge) => html`<tr key=${edge.address} data-ok=${String(edge.ok)}>
            <td data-label="Edge"><code>${edge.address}</code></td>
            <td data-label="Result" class=${edge.ok ? '' : 'error'}>${edge.ok ? 'ok' : edge.error}</td>
            <td data-label="HTTP">${edge.status ?? '—'}</td>
            <td data-label="Certificate" class="muted">
              ${edge.certificate_sha256 ? html`<code title=${edge.certificate_sha256}>${edge.certificate_sha256.slice(0, 12)}…</code>` : '—'}
            </td>
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

function DnsRecords({ records }) {
  return html`<table class="records">
    <thead>
      <tr><th scope="col">Type</th><th scope="col">Name</th><th scope="col">Value</th><th scope="col">For</th></tr>
    </thead>
    <tbody>
      ${records.map(
        (record) => html`<tr key=${`${record.type} ${record.name}`} data-type=${record.type}>
          <td data-label="Type">${record.type}</td>
          <td data-label="Name">
            <code class="record-name">${record.name}</code>
            <${CopyButton} value=${record.name} label=${`${record.type} record name`} />
          </td>
          <td data-label="Value">
            <code class="record-value">${record.value}</code>
            <${CopyButton} value=${record.value} label=${`${record.type} record value`} />
          </td>
          <td data-label="For" class="muted">${record.purpose}</td>
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
