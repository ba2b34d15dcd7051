import { type ParseArgsConfig, parseArgs } from 'node:util';
import { PorticoClient } from './client.js';
import { CliError, EXIT, UsageError } from './errors.js';
import { Output } from './output.js';

/** Options every API command takes. */
export const CONNECTION_OPTIONS = {
  url: { type: 'string' },
  key: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

export const CONNECTION_HELP = `Options of every command:
  --url URL    Portico's API (default: $PORTICO_URL, else http://127.0.0.1:3000)
  --key KEY    API key (default: $PORTICO_API_KEY); \`portico keys create\` makes one
  --json       print the API's JSON answer, for scripts
  -h, --help   show this help`;

const DEFAULT_URL = 'http://127.0.0.1:3000';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Parses one command's arguments together with the connection options; bad ones are a UsageError. */
export function parseCommand<const T extends Options>(args: string[], options: T = {} as T) {
  try {
    return parseArgs({
      args,
      options: { ...CONNECTION_OPTIONS, ...options },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    if (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS')) {
      throw new UsageError(error.message);
    }
    throw error;
  }
}

/** Checks that exactly the named arguments were given and answers them in order. */
export function expectArguments<const N extends readonly string[]>(
  positionals: readonly string[],
  names: N,
): { [K in keyof N]: string } {
  const missing = names.slice(positionals.length);
  if (missing.length > 0) throw new UsageError(`missing ${missing.join(' and ')}`);
  const extra = positionals.slice(names.length);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  return positionals as unknown as { [K in keyof N]: string };
}

/** A client from --url/--key, falling back to PORTICO_URL/PORTICO_API_KEY. */
export function connect(
  values: { url?: string; key?: string },
  env: Record<string, string | undefined> = process.env,
): PorticoClient {
  const apiKey = values.key ?? env.PORTICO_API_KEY?.trim();
  if (!apiKey) {
    throw new UsageError(
      'no API key: pass --key KEY or set PORTICO_API_KEY (an operator makes one with `portico keys create --org NAME`)',
    );
  }
  return new PorticoClient({ baseUrl: values.url ?? (env.PORTICO_URL?.trim() || DEFAULT_URL), apiKey });
}

/** A non-negative integer option, or undefined when absent. */
export function integerOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 0) {
    throw new UsageError(`--${name} must be a whole number, got "${value}"`);
  }
  return number;
}

export type Handler = (args: string[], out: Output) => Promise<number>;

export interface CommandGroup {
  name: string;
  usage: string;
  commands: Record<string, Handler>;
}

/**
 * Runs `portico <group> <command> …` and answers the exit code. Every expected failure is a
 * CliError, printed as one message (and as JSON on stdout with --json, so scripts can branch on
 * `error.code`); anything else is a bug and keeps its stack trace.
 */
export async function runGroup(group: CommandGroup, argv: string[]): Promise<number> {
  // Known before parsing, so that even a usage error is reported in the form asked for.
  const out = new Output({ json: argv.includes('--json') });
  const [name, ...args] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    out.line(group.usage);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const handler = Object.hasOwn(group.commands, name) ? group.commands[name] : undefined;
  try {
    if (handler === undefined) throw new UsageError(`unknown command "${group.name} ${name}"`);
    if (args.includes('--help') || args.includes('-h')) {
      out.line(group.usage);
      return EXIT.ok;
    }
    return await handler(args, out);
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    report(out, error, group.name);
    return error.exitCode;
  }
}

function report(out: Output, error: CliError, group: string): void {
  const code = error.code ? ` [${error.code}]` : '';
  out.error(`${error.message}${code}`);
  if (error instanceof UsageError) out.note(`See: portico ${group} --help`);
  if (out.json) {
    out.printJson({
      error: { code: error.code ?? null, status: error.status ?? null, message: error.message },
    });
  }
}
