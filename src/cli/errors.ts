/**
 * Exit codes of the API commands (`portico apps …`, `portico domains …`). Scripts branch on them,
 * so they are part of the CLI's contract and documented in the README.
 */
export const EXIT = {
  ok: 0,
  /** The domain ended `failed` or `moved`, or `domains check` found a wrong or missing record. */
  failed: 1,
  /** The command line is wrong: unknown option, missing argument, no API key. */
  usage: 2,
  /** `--wait` ran out of time before the domain settled. */
  timeout: 3,
  /** The API answered with an error, or Portico (or DNS, for `check`) could not be reached. */
  api: 4,
  /** Stopped by Ctrl-C; the shell convention for SIGINT. */
  interrupted: 130,
} as const;

export interface CliErrorOptions {
  /** The API's stable `error.code` (`domain_not_found`), for scripts and for the message. */
  code?: string;
  /** The HTTP status, when the API answered. */
  status?: number;
}

/** An error the CLI reports to the person as one message and an exit code, never a stack trace. */
export class CliError extends Error {
  readonly code: string | undefined;
  readonly status: number | undefined;

  constructor(
    message: string,
    readonly exitCode: number,
    options: CliErrorOptions = {},
  ) {
    super(message);
    this.name = 'CliError';
    this.code = options.code;
    this.status = options.status;
  }
}

/** A wrong command line. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT.usage);
    this.name = 'UsageError';
  }
}
