import { setTimeout as sleep } from 'node:timers/promises';
import { claimBase, isWildcard } from '../domain/hostname.js';
import { traitsOf } from '../domain/lifecycle.js';
import { resolveAppId } from './app-ref.js';
import type { Domain, PorticoClient } from './client.js';
import { connect, expectArguments, integerOption, parseCommand } from './command.js';
import {
  describeCertificate,
  formatProblem,
  paintStatus,
  printDomain,
  STATUS_MEANING,
} from './domain-view.js';
import { CliError, EXIT, UsageError } from './errors.js';
import type { Output, Palette } from './output.js';
import { createProgress, type Progress } from './spinner.js';

/** How often `--wait` reads the domain. Portico's checks are paced by its worker, not by this. */
const POLL_MS = 1000;
const DEFAULT_TIMEOUT_SECONDS = 300;

/** Where `--wait` stops (a settled status): the exit code, 0 when the domain is served; else undefined. */
function settledExitCode(status: string): number | undefined {
  const traits = traitsOf(status);
  if (!traits?.settled) return undefined;
  return traits.served ? EXIT.ok : EXIT.failed;
}

/** `portico domains verify APP DOMAIN [--wait] [--timeout SECONDS]` */
export async function verifyDomain(args: string[], out: Output): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    wait: { type: 'boolean' },
    timeout: { type: 'string' },
  });
  const [appRef, name] = expectArguments(positionals, ['APP', 'DOMAIN']);
  const timeout = integerOption(values.timeout, 'timeout');
  if (timeout !== undefined && !values.wait) throw new UsageError('--timeout goes with --wait');
  if (timeout === 0) throw new UsageError('--timeout must be at least 1 second');
  const client = connect(values);
  const appId = await resolveAppId(client, appRef);

  if (!values.wait) {
    const domain = await client.verifyDomain(appId, name);
    if (out.json) {
      out.printJson(domain);
    } else {
      printDomain(out, domain);
      out.line();
      out.line(`Follow it with: portico domains verify ${appRef} ${domain.domain} --wait`);
    }
    return EXIT.ok;
  }
  return follow({ client, out, appId, appRef, name, timeoutMs: (timeout ?? DEFAULT_TIMEOUT_SECONDS) * 1000 });
}

interface FollowInput {
  client: PorticoClient;
  out: Output;
  appId: string;
  appRef: string;
  name: string;
  timeoutMs: number;
}

/**
 * Asks for verification, then reads the domain every second until it settles or time runs out,
 * printing a line for every change a person should know about. Ctrl-C stops following only:
 * Portico goes on checking on its own.
 */
async function follow({ client, out, appId, appRef, name, timeoutMs }: FollowInput): Promise<number> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  const interrupt = new AbortController();
  const onSigint = () => interrupt.abort();
  process.once('SIGINT', onSigint);
  // With --json, stdout is one JSON document at the end: no progress in between.
  const progress: Progress = out.json ? { status() {}, log() {}, stop() {} } : createProgress(out.stdout);
  const changes = new ChangeLog(out.style, progress, started);
  let outcome: Outcome;

  try {
    if (!out.json) progress.log(`Verifying ${name} for ${appRef}, for up to ${formatDuration(timeoutMs)}:`);
    let domain = await client.verifyDomain(appId, name, interrupt.signal);
    changes.observe(domain);
    let lostContact: CliError | undefined;
    for (;;) {
      const exitCode = settledExitCode(domain.status);
      if (exitCode !== undefined) {
        outcome = { kind: 'settled', domain, exitCode };
        break;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        outcome = { kind: 'timeout', domain, lostContact };
        break;
      }
      progress.status(waitingText(domain, started, deadline));
      await sleep(Math.min(POLL_MS, left), undefined, { signal: interrupt.signal });
      const read = await readDomain(client, appId, name, interrupt.signal);
      if (read instanceof CliError) {
        if (read.message !== lostContact?.message) changes.transientError(read.message);
        lostContact = read;
      } else {
        lostContact = undefined;
        domain = read;
        changes.observe(domain);
      }
    }
  } catch (error) {
    if (!interrupt.signal.aborted) throw error;
    outcome = { kind: 'interrupted' };
  } finally {
    progress.stop();
    process.off('SIGINT', onSigint);
  }
  return conclude(out, outcome, { appRef, name, timeoutMs });
}

type Outcome =
  | { kind: 'settled'; domain: Domain; exitCode: number }
  /** `lostContact`: the last reads failed, so the status shown may be stale. */
  | { kind: 'timeout'; domain: Domain; lostContact: CliError | undefined }
  | { kind: 'interrupted' };

/**
 * One read of the domain. A network blip or a 5xx while waiting is answered as an error to report
 * and retry on the next tick, since giving up a long wait over one lost request helps nobody; an
 * API answer such as "domain not found" ends the wait.
 */
async function readDomain(
  client: PorticoClient,
  appId: string,
  name: string,
  signal: AbortSignal,
): Promise<Domain | CliError> {
  try {
    return await client.getDomain(appId, name, signal);
  } catch (error) {
    const transient = error instanceof CliError && (error.status === undefined || error.status >= 500);
    if (!transient || signal.aborted) throw error;
    return error;
  }
}

function conclude(
  out: Output,
  outcome: Outcome,
  { appRef, name, timeoutMs }: { appRef: string; name: string; timeoutMs: number },
): number {
  if (outcome.kind === 'interrupted') {
    out.note(
      `Stopped following ${name}; Portico goes on checking it. See where it is with: portico domains get ${appRef} ${name}`,
    );
    return EXIT.interrupted;
  }
  const { domain } = outcome;
  if (out.json) out.printJson(domain);
  if (outcome.kind === 'timeout') {
    if (outcome.lostContact) {
      out.error(`gave up after ${formatDuration(timeoutMs)}: ${outcome.lostContact.message}`);
      return EXIT.api;
    }
    out.error(
      `${domain.domain} is still ${domain.status} after ${formatDuration(timeoutMs)}; ${stillWaiting(domain)}`,
    );
    out.note(
      `Portico goes on checking. Compare DNS with what it expects: portico domains check ${appRef} ${name}`,
    );
    return EXIT.timeout;
  }
  if (out.json) return outcome.exitCode;
  if (outcome.exitCode === EXIT.ok) {
    // The API says where the edge serves it, port included when not 443; an older Portico does not.
    // A wildcard has no one address: every name one label under it serves the app.
    const where = isWildcard(domain.domain)
      ? `every name one label under ${claimBase(domain.domain)}`
      : (domain.url ?? `https://${domain.domain}/`);
    out.line(`${out.style.green('✓')} ${domain.domain} is active: ${where} serves ${appRef}.`);
  } else {
    out.error(`${domain.domain} is ${domain.status}: ${STATUS_MEANING[domain.status] ?? ''}`);
    out.note(`Fix the records named above, then run again: portico domains verify ${appRef} ${name} --wait`);
  }
  return outcome.exitCode;
}

/** What a domain that did not settle in time is waiting for. */
function stillWaiting(domain: Domain): string {
  if (domain.status === 'verifying') {
    return 'the ownership TXT record was not found yet (DNS changes can take minutes to show).';
  }
  if (domain.status === 'verified') {
    const routed = !(domain.verification_errors ?? []).length;
    if (!routed) return 'ownership is proven, but the domain does not route here yet (see above).';
    const certificate = domain.certificate?.status ?? 'not requested';
    return `ownership and routing are right; the certificate is ${certificate}.`;
  }
  return STATUS_MEANING[domain.status] ?? 'waiting.';
}

/** The spinner's line: where the domain is, and when Portico looks next. */
function waitingText(domain: Domain, started: number, deadline: number): string {
  const now = Date.now();
  const parts = [`${domain.status}: ${STATUS_MEANING[domain.status] ?? ''}`];
  if (domain.next_check_at) {
    const next = Date.parse(domain.next_check_at) - now;
    parts.push(next > 1000 ? `next DNS check in ${formatDuration(next)}` : 'checking DNS now');
  }
  parts.push(`${formatDuration(now - started)} elapsed, ${formatDuration(deadline - now)} left`);
  return parts.join(' · ');
}

/**
 * Remembers what was last shown, so each status, problem and certificate state is printed once
 * when it appears, not on every read.
 */
class ChangeLog {
  private status: string | undefined;
  private problems = new Set<string>();
  private certificate: string | undefined;

  constructor(
    private readonly style: Palette,
    private readonly progress: Progress,
    private readonly started: number,
  ) {}

  observe(domain: Domain): void {
    // The certificate first: its issuance is what makes a domain active.
    const certificate = domain.certificate ? JSON.stringify(domain.certificate) : undefined;
    if (certificate !== this.certificate && domain.certificate) {
      this.print(`certificate ${describeCertificate(this.style, domain.certificate)}`);
    }
    this.certificate = certificate;
    if (domain.status !== this.status) {
      this.status = domain.status;
      const meaning = STATUS_MEANING[domain.status];
      this.print(`${paintStatus(this.style, domain.status)}${meaning ? `: ${meaning}` : ''}`);
    }
    // A problem is new when the previous read did not have it: one that went away and came back
    // is worth a second line.
    const problems = domain.verification_errors ?? [];
    const key = (problem: { code: string; message: string }) => `${problem.code} ${problem.message}`;
    for (const problem of problems) {
      if (!this.problems.has(key(problem))) this.print(formatProblem(this.style, problem));
    }
    this.problems = new Set(problems.map(key));
  }

  transientError(message: string): void {
    this.print(`${this.style.yellow('!')} ${message}; trying again`);
  }

  private print(text: string): void {
    const stamp = this.style.dim(`[${formatDuration(Date.now() - this.started).padStart(5)}]`);
    this.progress.log(`${stamp} ${text}`);
  }
}

/** `7s`, `2m05s`: short enough for a progress line, exact enough to follow. */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes}m${String(seconds % 60).padStart(2, '0')}s`;
}
