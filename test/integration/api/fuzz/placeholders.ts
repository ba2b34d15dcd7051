/*
 * The fuzzer's inputs. They are written with two notations, so that a counterexample fast-check
 * prints stays readable: `«unit×count»` for a long repetition, and `{app}`, `{domain}`, `{key}`…
 * for the fixtures of the run, whose ids change when a fuzzed DELETE takes one away. `fill`
 * resolves both just before a request is sent.
 */

/** Expands `«unit×count»` repetitions. */
export const expand = (text: string) =>
  text.replace(/«([^×»]*)×(\d+)»/g, (_, unit: string, count: string) => unit.repeat(Number(count)));

/** The fixtures the placeholders `{app}`, `{other-app}`, `{domain}` and `{webhook}` name. */
export interface Ids {
  appId: string;
  otherAppId: string;
  domain: string;
  webhookId: string;
}

/** The API keys the placeholders `{key}`, `{read-key}` and `{other-key}` name. */
export interface Keys {
  /** A write key of the fixtures' organization. */
  write: string;
  /** A read-only key of the same organization. */
  read: string;
  /** A key of another organization. */
  other: string;
}

/** Expands repetitions and replaces the placeholders with the fixtures' current ids and keys. */
export const fill = (text: string, ids: Ids, keys: Keys) =>
  expand(text).replace(
    /\{(app|other-app|domain|webhook|key|read-key|other-key)\}/g,
    (_, name: string) =>
      ({
        app: ids.appId,
        'other-app': ids.otherAppId,
        domain: ids.domain,
        webhook: ids.webhookId,
        key: keys.write,
        'read-key': keys.read,
        'other-key': keys.other,
      })[name] as string,
  );
