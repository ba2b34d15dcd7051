// What every screen of the dashboard uses: the htm binding, state hooks and small components.
// Text is rendered by Preact, which escapes it; nothing here builds HTML from strings.
import htm from 'htm';
import { h } from 'preact';
import { useCallback, useEffect, useId, useRef, useState } from 'preact/hooks';

export const html = htm.bind(h);

const DAY_MS = 86_400_000;

// ---- State hooks --------------------------------------------------------------------------------

/** GETs `path` whenever it changes; `setData` applies local changes without another request. */
export function useResource(call, path) {
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

/**
 * Runs `task(isLive)` every `delayMs`, or never while `delayMs` is null. One run at a time: the next
 * is armed once the last has finished (a timeout, not an interval), so a slow API never piles
 * requests up. `task` answers false to stop; `isLive()` turns false once the loop is over, so a late
 * answer is dropped. The latest `task` runs each time: a new one does not restart the loop.
 */
export function usePolling(task, delayMs) {
  const latest = useRef(task);
  latest.current = task;
  useEffect(() => {
    if (delayMs == null) return;
    let live = true;
    let timer;
    const arm = () => {
      timer = setTimeout(async () => {
        const goOn = await latest.current(() => live);
        if (live && goOn !== false) arm();
      }, delayMs);
    };
    arm();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [delayMs]);
}

/** Runs an async action, tracking whether it is running and the message of its last failure. */
export function useAction(action) {
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
export function useFormAction(action) {
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

export const text = (form, name) => String(form.get(name) ?? '').trim();

// ---- Small pieces -------------------------------------------------------------------------------

export function ErrorMessage({ message }) {
  return message ? html`<p class="error" role="alert">${message}</p>` : null;
}

export function StatusBadge({ status }) {
  return html`<span class=${`badge badge-${status}`}>${status}</span>`;
}

export function Timestamp({ iso, empty = '—' }) {
  if (!iso) return html`<span class="muted">${empty}</span>`;
  return html`<time datetime=${iso} title=${iso}>${new Date(iso).toLocaleString()}</time>`;
}

/** A certificate's end as a date (UTC, unambiguous in every locale) and the days left. */
export function Expiry({ certificate }) {
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
export function CopyButton({ value, label }) {
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

/**
 * Asks before something that cannot be undone, in a modal <dialog>: the page behind it is inert
 * until it closes, and Escape or Cancel closes it (`onClose`). Focus starts on the first field marked
 * `autofocus` in `children`, else on Cancel, so Enter never confirms by accident. The confirm button
 * stays disabled until `ready`; a failed `onConfirm` keeps the dialog open with the API's message.
 */
export function ConfirmDialog({ title, confirmLabel, onConfirm, onClose, ready = true, children }) {
  const dialog = useRef(null);
  const titleId = useId();
  const confirm = useAction(onConfirm);
  useEffect(() => {
    dialog.current?.showModal();
  }, []);
  return html`<dialog ref=${dialog} class="confirm" aria-labelledby=${titleId} onClose=${onClose}>
    <h2 id=${titleId}>${title}</h2>
    ${children}
    <${ErrorMessage} message=${confirm.error} />
    <div class="actions">
      <button type="button" class="danger" disabled=${!ready || confirm.busy} onClick=${() => confirm.run()}>
        ${confirmLabel}
      </button>
      <button type="button" class="secondary" autofocus onClick=${() => dialog.current?.close()}>Cancel</button>
    </div>
  </dialog>`;
}
