import { ConfigError } from './config-error.js';

const USAGE = `Usage: portico <command> [options]

Operator commands (they use the server's configuration and store directly):
  serve [--roles api,worker,edge]      run Portico (every role by default)
  migrate                              apply database migrations and exit
  keys create --org NAME [--read-only] [--name LABEL]
                                       create an API key and print it (shown once)
  keys list [--org NAME] [--json]      list API keys: ids, organizations, scopes (never the keys)
  keys revoke KEY_ID                   revoke an API key

API commands (they talk to a running Portico: --url/--key or PORTICO_URL/PORTICO_API_KEY):
  apps create|list|get|delete          manage apps; \`portico apps --help\` for details
  domains add|list|get|remove|verify|check
                                       manage custom domains; \`portico domains --help\`
  Every API command takes --json for scripts.

Configuration comes from the environment (PORTICO_*, DATABASE_URL); see README.md.`;

/**
 * `portico … | head -1`: once the reader is gone, what is left to print has nowhere to go. A
 * command then ends quietly with exit code 0 (as ripgrep does), rather than dying of an unhandled
 * EPIPE with a stack trace; `serve` keeps serving and drops its output, as pino does on its own
 * stream.
 */
function onClosedOutput(keepRunning: boolean): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
      if (!keepRunning) process.exit(0);
    });
  }
}

/** The CLI entry; answers the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  onClosedOutput(command === 'serve');
  try {
    switch (command) {
      // Each family of commands is loaded only when one of it runs: a client command should not
      // pay for loading the server (fastify, kysely, pg, acme-client), nor the server for the clients.
      case 'serve':
        return await (await import('./cli/serve.js')).serve(rest);
      case 'migrate':
        return await (await import('./cli/operator.js')).migrate();
      case 'keys':
        return await (await import('./cli/operator.js')).keys(rest);
      // API clients, loaded only when one is run: `serve` has no use for them.
      case 'apps':
        return await (await import('./cli/apps.js')).apps(rest);
      case 'domains':
        return await (await import('./cli/domains.js')).domains(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        console.log(USAGE);
        return command === undefined ? 1 : 0;
      default:
        console.error(`portico: unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (error) {
    if (
      error instanceof ConfigError ||
      (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))
    ) {
      console.error(`portico: ${error.message}`);
      return 2;
    }
    throw error;
  }
}
