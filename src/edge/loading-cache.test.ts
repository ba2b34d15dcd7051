import { describe, expect, it } from 'vitest';
import { LoadingCache, type LoadingCacheOptions } from './loading-cache.js';

/** A source whose reads stay pending until the test settles them, with a count of reads per key. */
class GatedSource {
  readonly reads = new Map<string, number>();
  /** The value each read was handed to replace, in order. */
  readonly previous: (string | undefined)[] = [];
  private readonly pending: {
    key: string;
    resolve(value: string | undefined): void;
    reject(error: Error): void;
  }[] = [];

  load = (key: string, previous: string | undefined): Promise<string | undefined> => {
    this.reads.set(key, (this.reads.get(key) ?? 0) + 1);
    this.previous.push(previous);
    return new Promise((resolve, reject) => this.pending.push({ key, resolve, reject }));
  };

  readsOf(key: string): number {
    return this.reads.get(key) ?? 0;
  }

  resolve(key: string, value: string | undefined): void {
    this.take(key).resolve(value);
  }

  reject(key: string, error: Error): void {
    this.take(key).reject(error);
  }

  private take(key: string) {
    const index = this.pending.findIndex((read) => read.key === key);
    const [read] = index === -1 ? [] : this.pending.splice(index, 1);
    if (read === undefined) throw new Error(`no pending read of ${key}`);
    return read;
  }
}

function cacheOver(
  source: GatedSource,
  clock: { now: number },
  options: Partial<LoadingCacheOptions<string>> = {},
) {
  return new LoadingCache<string>({
    load: source.load,
    maxEntries: 3,
    ttlMs: 1_000,
    negativeTtlMs: 100,
    now: () => clock.now,
    ...options,
  });
}

/** Settles one read and returns what `get` then answers (synchronously, from the cache). */
async function loaded(
  cache: LoadingCache<string>,
  source: GatedSource,
  key: string,
  value: string | undefined,
) {
  const pending = cache.get(key);
  source.resolve(key, value);
  expect(await pending).toBe(value);
  return cache.get(key);
}

/** Lets a background load's callbacks run. */
const settled = () => new Promise((resolve) => setImmediate(resolve));

describe('LoadingCache', () => {
  it('answers a hit synchronously and loads a miss once for all concurrent callers', async () => {
    const source = new GatedSource();
    const cache = cacheOver(source, { now: 0 });
    const first = cache.get('a');
    const second = cache.get('a');
    expect(first).toBeInstanceOf(Promise);
    expect(source.readsOf('a')).toBe(1);
    source.resolve('a', 'A');
    expect(await first).toBe('A');
    expect(await second).toBe('A');
    expect(cache.get('a')).toBe('A');
    expect(source.readsOf('a')).toBe(1);
  });

  it('reads a value again once its TTL has passed', async () => {
    const source = new GatedSource();
    const clock = { now: 0 };
    const cache = cacheOver(source, clock);
    await loaded(cache, source, 'a', 'A');
    clock.now = 999;
    expect(cache.get('a')).toBe('A');
    clock.now = 1_000;
    const reread = cache.get('a');
    expect(reread).toBeInstanceOf(Promise);
    source.resolve('a', 'A2');
    expect(await reread).toBe('A2');
  });

  it('caps a lifetime with maxAgeOf', async () => {
    const source = new GatedSource();
    const clock = { now: 0 };
    const cache = cacheOver(source, clock, { maxAgeOf: () => 10 });
    await loaded(cache, source, 'a', 'A');
    clock.now = 10;
    expect(cache.get('a')).toBeInstanceOf(Promise);
  });

  it('remembers "not found" for the negative TTL only', async () => {
    const source = new GatedSource();
    const clock = { now: 0 };
    const cache = cacheOver(source, clock);
    expect(await loaded(cache, source, 'ghost', undefined)).toBeUndefined();
    clock.now = 99;
    expect(cache.get('ghost')).toBeUndefined();
    expect(source.readsOf('ghost')).toBe(1);
    clock.now = 100;
    expect(cache.get('ghost')).toBeInstanceOf(Promise);
  });

  it('evicts the least recently used value beyond maxEntries', async () => {
    const source = new GatedSource();
    const cache = cacheOver(source, { now: 0 });
    for (const key of ['a', 'b', 'c']) await loaded(cache, source, key, key.toUpperCase());
    expect(cache.get('a')).toBe('A'); // a is now the most recently used; b the least
    await loaded(cache, source, 'd', 'D');
    expect(cache.size).toBe(3);
    expect(cache.get('a')).toBe('A');
    expect(cache.get('b')).toBeInstanceOf(Promise);
  });

  it('evicts the least recently used values once their weight passes maxBytes', async () => {
    const source = new GatedSource();
    const cache = cacheOver(
      source,
      { now: 0 },
      { maxEntries: undefined, maxBytes: 10, sizeOf: (value) => value.length, maxNegativeEntries: 10 },
    );
    await loaded(cache, source, 'a', 'AAAA');
    await loaded(cache, source, 'b', 'BBBB');
    expect(cache.bytes).toBe(8);
    expect(cache.get('a')).toBe('AAAA'); // a is now the most recently used; b the least
    await loaded(cache, source, 'c', 'CCC'); // 11 bytes: over the budget by b's
    expect(cache.get('b')).toBeInstanceOf(Promise);
    expect(cache.get('a')).toBe('AAAA');
    expect(cache.get('c')).toBe('CCC');
    expect(cache.bytes).toBe(7);
    // Many light values fit where few heavy ones did: the bound is their weight, not their count.
    source.resolve('b', undefined);
    for (const key of ['d', 'e', 'f']) await loaded(cache, source, key, key);
    expect(cache.size).toBe(5);
    expect(cache.bytes).toBe(10);
  });

  it('keeps a value heavier than the whole budget, alone, and forgets its weight with it', async () => {
    const source = new GatedSource();
    const cache = cacheOver(
      source,
      { now: 0 },
      { maxEntries: undefined, maxBytes: 10, sizeOf: (value) => value.length, maxNegativeEntries: 10 },
    );
    await loaded(cache, source, 'a', 'AAAA');
    await loaded(cache, source, 'big', 'X'.repeat(25));
    expect(cache.size).toBe(1);
    expect(cache.get('big')).toBe('X'.repeat(25));
    expect(cache.get('a')).toBeInstanceOf(Promise);
    source.resolve('a', 'AAAA'); // evicts 'big': the newest value stays, the budget is kept again
    await settled();
    expect(cache.get('big')).toBeInstanceOf(Promise);
    expect(cache.bytes).toBe(4);
    cache.invalidate('a');
    expect(cache.bytes).toBe(0);
  });

  it('needs a bound, and a way to weigh values when the bound is a weight', () => {
    const load = async () => 'value';
    const base = { load, ttlMs: 1_000, negativeTtlMs: 100 };
    expect(() => new LoadingCache(base)).toThrow(RangeError);
    expect(() => new LoadingCache({ ...base, maxBytes: 100, maxNegativeEntries: 10 })).toThrow(RangeError);
    expect(() => new LoadingCache({ ...base, maxBytes: 100, sizeOf: () => 1 })).toThrow(RangeError);
  });

  it('keeps "not found" answers apart, so a flood of unknown names evicts no value', async () => {
    const source = new GatedSource();
    const cache = cacheOver(source, { now: 0 }, { maxNegativeEntries: 2 });
    await loaded(cache, source, 'a', 'A');
    for (let i = 0; i < 10; i++) await loaded(cache, source, `scan-${i}`, undefined);
    expect(cache.get('a')).toBe('A');
    expect(cache.get('scan-9')).toBeUndefined();
    expect(cache.get('scan-0')).toBeInstanceOf(Promise);
  });

  it('invalidate drops a value at once', async () => {
    const source = new GatedSource();
    const cache = cacheOver(source, { now: 0 });
    await loaded(cache, source, 'a', 'A');
    cache.invalidate('a');
    expect(await loaded(cache, source, 'a', undefined)).toBeUndefined();
  });

  it('invalidateMatching drops the values, "not found" answers and loads in flight it matches, and no other', async () => {
    const source = new GatedSource();
    const cache = cacheOver(source, { now: 0 }, { maxEntries: 10 });
    await loaded(cache, source, 'x.acme.com', 'X');
    await loaded(cache, source, 'y.acme.com', undefined);
    await loaded(cache, source, 'acme.com', 'APEX');
    const inFlight = cache.get('z.acme.com');
    cache.invalidateMatching((key) => key.endsWith('.acme.com'));
    // The load in flight is disowned: its answer is not stored.
    source.resolve('z.acme.com', 'stale');
    expect(await inFlight).toBe('stale');
    for (const key of ['x.acme.com', 'y.acme.com', 'z.acme.com'])
      expect(cache.get(key)).toBeInstanceOf(Promise);
    expect(cache.get('acme.com')).toBe('APEX');
  });

  it('a load that started before an invalidation does not store its stale answer', async () => {
    const source = new GatedSource();
    const cache = cacheOver(source, { now: 0 });
    const before = cache.get('a');
    cache.invalidate('a');
    const after = cache.get('a');
    expect(source.readsOf('a')).toBe(2);
    source.resolve('a', 'old');
    expect(await before).toBe('old');
    source.resolve('a', 'new');
    expect(await after).toBe('new');
    expect(cache.get('a')).toBe('new');
  });

  it('clear drops values, "not found" answers and loads in flight', async () => {
    const source = new GatedSource();
    const cache = cacheOver(source, { now: 0 });
    await loaded(cache, source, 'a', 'A');
    await loaded(cache, source, 'ghost', undefined);
    const inFlight = cache.get('b');
    cache.clear();
    source.resolve('b', 'B');
    await inFlight;
    expect(cache.size).toBe(0);
    expect(cache.get('a')).toBeInstanceOf(Promise);
    expect(cache.get('ghost')).toBeInstanceOf(Promise);
    expect(cache.get('b')).toBeInstanceOf(Promise);
  });

  it('expireAll keeps values for a failed read (a database reconnecting) and reads each again', async () => {
    const source = new GatedSource();
    const clock = { now: 0 };
    const cache = cacheOver(source, clock);
    await loaded(cache, source, 'a', 'A');
    await loaded(cache, source, 'b', 'B');
    await loaded(cache, source, 'ghost', undefined);
    const inFlight = cache.get('c');
    cache.expireAll();
    // Nothing dropped: the values are still held, but the next use of each reads the source.
    expect(cache.size).toBe(2);
    const a = cache.get('a');
    expect(a).toBeInstanceOf(Promise);
    source.reject('a', new Error('database still down'));
    expect(await a).toBe('A');
    const b = cache.get('b');
    source.resolve('b', undefined);
    expect(await b).toBeUndefined();
    // "Not found" is asked again, and a load started before is not stored.
    expect(cache.get('ghost')).toBeInstanceOf(Promise);
    source.resolve('c', 'old C');
    await inFlight;
    expect(cache.get('c')).toBeInstanceOf(Promise);
    expect(source.readsOf('a')).toBe(2);
  });

  it('serves an expired value when reading it again fails, and retries after the negative TTL', async () => {
    const source = new GatedSource();
    const clock = { now: 0 };
    const errors: unknown[] = [];
    const cache = cacheOver(source, clock, { onLoadError: (_key, error) => errors.push(error) });
    await loaded(cache, source, 'a', 'A');
    clock.now = 1_000;
    const stale = cache.get('a');
    const alsoWaiting = cache.get('a');
    source.reject('a', new Error('database down'));
    expect(await stale).toBe('A');
    expect(await alsoWaiting).toBe('A');
    expect(errors).toHaveLength(1);
    expect(cache.get('a')).toBe('A');
    clock.now = 1_100;
    expect(cache.get('a')).toBeInstanceOf(Promise);
  });

  it('passes the error on when there is no value to fall back on, and caches nothing', async () => {
    const source = new GatedSource();
    const cache = cacheOver(source, { now: 0 });
    const failing = cache.get('a');
    source.reject('a', new Error('database down'));
    await expect(failing).rejects.toThrow('database down');
    expect(cache.get('a')).toBeInstanceOf(Promise);
  });

  it('reads a value in use again before it expires, answering from memory meanwhile', async () => {
    const source = new GatedSource();
    const clock = { now: 0 };
    const cache = cacheOver(source, clock, { refreshAheadMs: 100 });
    await loaded(cache, source, 'a', 'A');
    clock.now = 899;
    expect(cache.get('a')).toBe('A');
    expect(source.readsOf('a')).toBe(1);
    clock.now = 900;
    expect(cache.get('a')).toBe('A');
    expect(cache.get('a')).toBe('A');
    expect(source.readsOf('a')).toBe(2);
    // The reload is handed the value it replaces.
    expect(source.previous).toEqual([undefined, 'A']);
    source.resolve('a', 'A2');
    await settled();
    expect(cache.get('a')).toBe('A2');
    // The new value lives a whole TTL from its load.
    clock.now = 1_799;
    expect(cache.get('a')).toBe('A2');
    expect(source.readsOf('a')).toBe(2);
  });

  it('keeps a value whose refresh failed, and tries again after the negative TTL', async () => {
    const source = new GatedSource();
    const clock = { now: 0 };
    const errors: unknown[] = [];
    const cache = cacheOver(source, clock, {
      refreshAheadMs: 300,
      onLoadError: (_key, error) => errors.push(error),
    });
    await loaded(cache, source, 'a', 'A');
    clock.now = 700;
    expect(cache.get('a')).toBe('A');
    source.reject('a', new Error('database down'));
    await settled();
    expect(errors).toHaveLength(1);
    expect(cache.get('a')).toBe('A');
    expect(source.readsOf('a')).toBe(2);
    clock.now = 800;
    expect(cache.get('a')).toBe('A');
    expect(source.readsOf('a')).toBe(3);
    // A refresh that finds the name gone drops it.
    source.resolve('a', undefined);
    await settled();
    expect(cache.get('a')).toBeUndefined();
  });

  it('refreshes a short-lived value (maxAgeOf) only in the second half of its life', async () => {
    const source = new GatedSource();
    const clock = { now: 0 };
    const cache = cacheOver(source, clock, { refreshAheadMs: 500, maxAgeOf: () => 100 });
    await loaded(cache, source, 'a', 'A');
    clock.now = 49;
    expect(cache.get('a')).toBe('A');
    expect(source.readsOf('a')).toBe(1);
    clock.now = 50;
    expect(cache.get('a')).toBe('A');
    expect(source.readsOf('a')).toBe(2);
  });
});
