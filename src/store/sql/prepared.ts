import type { Compilable, CompiledQuery, DialectAdapter, Kysely, QueryResult } from 'kysely';
import type { Database } from '../schema.js';

/** Named values a prepared query is run with. */
export type Values = Record<string, unknown>;

/** What a prepared query keeps per dialect: its SQL, and where each parameter's value comes from. */
interface Compiled {
  query: CompiledQuery;
  /** Per parameter, in order: the name of the value to bind, or a constant the builder wrote. */
  slots: ({ name: string } | { constant: unknown })[];
}

/**
 * A query that kysely builds and compiles once per dialect, then runs with new values each time.
 *
 * Building a query (immutable nodes, frozen at every step) and compiling it costs more than SQLite
 * takes to run a point query: on add-domain it was a third of the process's CPU. The queries on the
 * hottest paths (add-domain, reading an app, the edge's cold lookups) have a fixed shape, so they
 * are written as usual with the query builder, against placeholder values, and only the values
 * change between runs. Queries whose shape depends on their input (optional patches, `$if`) stay
 * ordinary builder calls.
 *
 * The builder receives `values`, whose properties are placeholders: pass them where a value goes,
 * never into JavaScript logic (a placeholder is a marker string, not the value). Compiling checks
 * that every placeholder read became a bound parameter, so a placeholder kysely would inline into
 * the SQL text is caught the first time the query runs, not shipped.
 */
export function prepared<V extends Values, R>(
  build: (db: Kysely<Database>, values: V) => Compilable<R>,
): (db: Kysely<Database>, values: V) => Promise<QueryResult<R>> {
  // The root database and its transactions share one adapter per dialect instance.
  const compiled = new WeakMap<DialectAdapter, Compiled>();
  return async (db, values) => {
    const adapter = db.getExecutor().adapter;
    let entry = compiled.get(adapter);
    if (entry === undefined) {
      entry = compile(db, build);
      compiled.set(adapter, entry);
    }
    const parameters = entry.slots.map((slot) => ('name' in slot ? values[slot.name] : slot.constant));
    return db.executeQuery<R>({ ...entry.query, parameters } as CompiledQuery<R>);
  };
}

/** A marker no real value has: a NUL, which the API refuses in every input. */
const MARKER = '\u0000prepared:';

function compile<V extends Values, R>(
  db: Kysely<Database>,
  build: (db: Kysely<Database>, values: V) => Compilable<R>,
): Compiled {
  const read = new Set<string>();
  const placeholders = new Proxy({} as V, {
    get(_target, name) {
      if (typeof name !== 'string') return undefined;
      read.add(name);
      return `${MARKER}${name}`;
    },
  });
  const query = build(db, placeholders).compile() as CompiledQuery;
  const slots = query.parameters.map((parameter) =>
    typeof parameter === 'string' && parameter.startsWith(MARKER)
      ? { name: parameter.slice(MARKER.length) }
      : { constant: parameter },
  );
  const bound = new Set(slots.flatMap((slot) => ('name' in slot ? [slot.name] : [])));
  const unbound = [...read].filter((name) => !bound.has(name));
  if (unbound.length > 0 || query.sql.includes(MARKER)) {
    throw new Error(`prepared query: ${unbound.join(', ')} not bound as parameters in: ${query.sql}`);
  }
  return { query, slots };
}
