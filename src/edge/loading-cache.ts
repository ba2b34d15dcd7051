/**
 * A bounded, expiring, single-flight cache in front of a slow lookup (a database read), for the
 * edge's two hot paths: TLS handshakes (certificates by SNI name) and requests (routes by Host).
 *
 * - Bounded: at most `maxEntries` values, or values weighing `maxBytes` together (as `sizeOf`
 *   weighs each), the least recently used evicted first. "Not found" answers are kept apart, at
 *   most `maxNegativeEntries` of them, oldest evicted first: scanners send made-up SNI and Host
 *   names all day, and they must not push served names out.
 * - Expiring: a value lives `ttlMs` (or less, see `maxAgeOf`), a "not found" `negativeTtlMs`. With
 *   invalidation the TTL is only a backstop for a missed change.
 * - Refreshed ahead: a value asked for in the last `refreshAheadMs` of its life is answered from
 *   memory while it is read again in the background, so a name in steady use never waits for a
 *   load. The load is handed the value it replaces, to reuse what did not change.
 * - Single-flight: concurrent misses for one key cause one load; the others wait for it.
 * - Invalidation is immediate: `invalidate(key)` and `clear()` drop entries and disown loads in
 *   flight, so a load that started before a change cannot store the old answer after it.
 * - Stale on error: when a load fails while an expired value is at hand, that value is served and
 *   kept for another `negativeTtlMs` before the next try, so a database blip does not take served
 *   names down with it. With nothing at hand, the error reaches the caller.
 *
 * Nothing is loaded up front: memory follows the names in use, not the size of the table.
 */
export interface LoadingCacheOptions<V> {
  /**
   * Reads one key (an async function: it must not throw synchronously); `undefined` means "not
   * found". `previous` is the value the load will replace, when one is at hand (a refresh, or an
   * expired value): a loader may return parts of it that have not changed.
   */
  load(key: string, previous: V | undefined): Promise<V | undefined>;
  /** Values held at most. Default: no bound by count (`maxBytes` then bounds the cache). */
  maxEntries?: number;
  /**
   * What the values held may weigh together at most, each weighed by `sizeOf` when it is stored.
   * The newest value is kept even when it alone weighs more: the cache never drops what it was
   * just handed. Default: no bound by weight.
   */
  maxBytes?: number;
  /** A value's weight against `maxBytes`, in bytes. */
  sizeOf?(value: V): number;
  /** Default: `maxEntries` (required when the cache is bounded by `maxBytes` alone). */
  maxNegativeEntries?: number;
  ttlMs: number;
  negativeTtlMs: number;
  /** How long before its expiry a value in use is read again in the background, in ms. Default 0: never. */
  refreshAheadMs?: number;
  /** Caps one value's lifetime below `ttlMs` (a certificate's remaining validity). In ms. */
  maxAgeOf?(value: V, now: number): number;
  /** Called once per failed load (not once per waiter): the place to log it. */
  onLoadError?(key: string, error: unknown): void;
  /** A value was stored under `key` (held until `onDropped` for it). */
  onStored?(key: string, value: V): void;
  /** A stored value left: replaced, invalidated, evicted or cleared. */
  onDropped?(key: string, value: V): void;
  /** Milliseconds since the epoch; tests pass their own clock. */
  now?(): number;
}

interface Entry<V> {
  readonly value: V;
  /** Its weight against `maxBytes` (0 when the cache is bounded by count alone). */
  readonly bytes: number;
  expiresAt: number;
  /** From then on, a hit also reads the value again in the background (`refreshAheadMs`). */
  refreshAt: number;
}

export class LoadingCache<V> {
  private readonly values = new Map<string, Entry<V>>();
  private readonly misses = new Map<string, number>();
  private readonly flights = new Map<string, Promise<V | undefined>>();
  private readonly loader: (key: string, previous: V | undefined) => Promise<V | undefined>;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly sizeOf: ((value: V) => number) | undefined;
  private readonly maxNegativeEntries: number;
  /** What the values held weigh together. */
  private weight = 0;
  private readonly ttlMs: number;
  private readonly negativeTtlMs: number;
  private readonly refreshAheadMs: number;
  private readonly maxAgeOf: ((value: V, now: number) => number) | undefined;
  private readonly onLoadError: ((key: string, error: unknown) => void) | undefined;
  private readonly onStored: ((key: string, value: V) => void) | undefined;
  private readonly onDropped: ((key: string, value: V) => void) | undefined;
  private readonly now: () => number;

  constructor(options: LoadingCacheOptions<V>) {
    const { maxEntries, maxBytes } = options;
    if (maxEntries === undefined && maxBytes === undefined) {
      throw new RangeError('a LoadingCache needs a bound: maxEntries, maxBytes or both');
    }
    if (maxEntries !== undefined && !(maxEntries >= 1)) throw new RangeError('maxEntries must be at least 1');
    if (maxBytes !== undefined && (!(maxBytes >= 0) || options.sizeOf === undefined)) {
      throw new RangeError('maxBytes must be a number of bytes, with sizeOf to weigh each value');
    }
    const maxNegativeEntries = options.maxNegativeEntries ?? maxEntries;
    if (maxNegativeEntries === undefined)
      throw new RangeError('maxNegativeEntries is needed with maxBytes alone');
    this.loader = options.load;
    this.maxEntries = maxEntries ?? Number.POSITIVE_INFINITY;
    this.maxBytes = maxBytes ?? Number.POSITIVE_INFINITY;
    this.sizeOf = maxBytes === undefined ? undefined : options.sizeOf;
    this.maxNegativeEntries = Math.max(1, maxNegativeEntries);
    this.ttlMs = options.ttlMs;
    this.negativeTtlMs = options.negativeTtlMs;
    this.refreshAheadMs = options.refreshAheadMs ?? 0;
    this.maxAgeOf = options.maxAgeOf;
    this.onLoadError = options.onLoadError;
    this.onStored = options.onStored;
    this.onDropped = options.onDropped;
    this.now = options.now ?? Date.now;
  }

  /**
   * The value for `key`: returned as is when cached and fresh (`undefined` for a fresh "not found"),
   * so a hit allocates no promise; otherwise a promise of the loaded value. A rejected promise means
   * the load failed with no value at hand to fall back on.
   */
  get(key: string): V | undefined | Promise<V | undefined> {
    const now = this.now();
    const entry = this.values.get(key);
    if (entry !== undefined) {
      if (entry.expiresAt > now) {
        // A Map iterates in insertion order: re-inserting keeps the least recently used first.
        this.values.delete(key);
        this.values.set(key, entry);
        if (entry.refreshAt <= now && !this.flights.has(key)) {
          // The caller is answered now; a failed refresh keeps the value and tries again later.
          this.load(key, entry).catch(() => {});
        }
        return entry.value;
      }
    } else {
      const missUntil = this.misses.get(key);
      if (missUntil !== undefined && missUntil > now) return undefined;
    }
    return this.load(key, entry);
  }

  /** Forgets `key` now, including a load in flight: the next `get` reads the source again. */
  invalidate(key: string): void {
    this.drop(key);
    this.misses.delete(key);
    this.flights.delete(key);
  }

  /**
   * Forgets every key `matches` accepts, as `invalidate` does each: values, "not found" answers and
   * loads in flight. Walks every key held (bounded by the cache's size): for a change that touches
   * names no single key names, such as a wildcard claim and every name under it.
   */
  invalidateMatching(matches: (key: string) => boolean): void {
    const keys = new Set<string>();
    for (const map of [this.values, this.misses, this.flights]) {
      for (const key of map.keys()) if (matches(key)) keys.add(key);
    }
    for (const key of keys) this.invalidate(key);
  }

  /**
   * Makes every value stale, as after missing change notifications: the next `get` of each key
   * reads the source again, and only if that read fails is the value it had served (stale on
   * error). Unlike `clear`, a source that is down when this is called (a database reconnecting)
   * takes nothing served down with it. "Not found" answers are forgotten; loads in flight disowned.
   */
  expireAll(): void {
    const now = this.now();
    for (const entry of this.values.values()) {
      if (entry.expiresAt > now) entry.expiresAt = now;
    }
    this.misses.clear();
    this.flights.clear();
  }

  /** Forgets everything. */
  clear(): void {
    if (this.onDropped) for (const [key, entry] of this.values) this.onDropped(key, entry.value);
    this.values.clear();
    this.weight = 0;
    this.misses.clear();
    this.flights.clear();
  }

  /** Values held (fresh or not), not counting "not found" answers. */
  get size(): number {
    return this.values.size;
  }

  /** What the values held weigh together, as `sizeOf` weighs them (0 for a cache bounded by count alone). */
  get bytes(): number {
    return this.weight;
  }

  private load(key: string, stale: Entry<V> | undefined): Promise<V | undefined> {
    const inFlight = this.flights.get(key);
    if (inFlight !== undefined) return inFlight;

    // A load still owns its key while it is the one in `flights`: invalidation removes it.
    const flight: Promise<V | undefined> = this.loader(key, stale?.value).then(
      (value) => {
        if (this.flights.get(key) === flight) {
          this.flights.delete(key);
          this.store(key, value);
        }
        return value;
      },
      (error: unknown) => {
        const current = this.flights.get(key) === flight;
        if (current) this.flights.delete(key);
        this.onLoadError?.(key, error);
        if (!current || stale === undefined) throw error;
        const now = this.now();
        // An expired value is served a while longer; one still fresh is kept as it is.
        if (stale.expiresAt <= now) stale.expiresAt = now + this.negativeTtlMs;
        stale.refreshAt = Math.min(now + this.negativeTtlMs, stale.expiresAt);
        return stale.value;
      },
    );
    this.flights.set(key, flight);
    return flight;
  }

  private store(key: string, value: V | undefined): void {
    const now = this.now();
    if (value === undefined) {
      this.drop(key);
      this.misses.delete(key);
      this.misses.set(key, now + this.negativeTtlMs);
      evictOldest(this.misses, this.maxNegativeEntries);
      return;
    }
    const maxAge = this.maxAgeOf === undefined ? this.ttlMs : Math.min(this.ttlMs, this.maxAgeOf(value, now));
    this.misses.delete(key);
    this.drop(key);
    // A value refreshed ahead gets at least the second half of its life to be asked for again.
    const refreshAhead = Math.min(this.refreshAheadMs, maxAge / 2);
    const bytes = this.sizeOf?.(value) ?? 0;
    this.values.set(key, {
      value,
      bytes,
      expiresAt: now + maxAge,
      refreshAt: refreshAhead > 0 ? now + maxAge - refreshAhead : Number.POSITIVE_INFINITY,
    });
    this.weight += bytes;
    this.onStored?.(key, value);
    // Least recently used first, and never the value just stored (the last one left).
    while (this.values.size > 1 && (this.values.size > this.maxEntries || this.weight > this.maxBytes)) {
      const oldest = this.values.keys().next();
      if (oldest.done) break;
      this.drop(oldest.value);
    }
  }

  /** Forgets `key`'s value, if one is held, and its weight. */
  private drop(key: string): void {
    const entry = this.values.get(key);
    if (entry === undefined) return;
    this.values.delete(key);
    this.weight -= entry.bytes;
    this.onDropped?.(key, entry.value);
  }
}

function evictOldest(map: Map<string, unknown>, max: number): void {
  while (map.size > max) {
    const oldest = map.keys().next();
    if (oldest.done) return;
    map.delete(oldest.value);
  }
}
