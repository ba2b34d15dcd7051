/**
 * A setting, or a combination of settings, that Portico cannot run with. `portico` prints its
 * message as one line and exits 2 (src/main.ts, src/cli/serve.ts). Its own module, so that a part
 * that checks the settings it is handed (the secret box) can say so without importing config.ts,
 * which only the composition reads.
 */
export class ConfigError extends Error {}
