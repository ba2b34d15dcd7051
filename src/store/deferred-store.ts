import { ALL_HOSTNAMES, type Store } from './store.js';

/** Thrown by a deferred store's queries while the database has not answered yet. */
export class StoreNotOpenError extends Error {
  constructor(cause: unknown) {
    super(`the store is not reachable yet: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'StoreNotOpenError';
  }
}

export interface DeferredStore {
  /** Usable at once: its queries fail with `StoreNotOpenError` until the database has opened. */
  store: Store;
  /** Settles once the database opened (or the store was closed first). */
  opened: Promise<void>;
}

/**
 * A store for a process that must start while the database cannot answer: an edge, which serves
 * from its snapshot meanwhile (src/snapshot/). `open` is tried again every `retryMs` until it
 * succeeds; until then every query fails with `StoreNotOpenError` (the edge's sources take that as
 * "the store is down"), and change-feed listeners are kept and attached once it opens, told
 * `ALL_HOSTNAMES` then (everything may have changed meanwhile). Only a process that reads needs
 * this: one that writes (the api, the worker) still refuses to start without its store.
 */
export function deferStore(
  open: () => Promise<Store>,
  firstError: unknown,
  { retryMs = 1_000, onOpen }: { retryMs?: number; onOpen?: () => void } = {},
): DeferredStore {
  let real: Store | undefined;
  let lastError = firstError;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  /** Listeners subscribed before the store opened, each with how to detach it (from the real feed, once open). */
  const waiting = new Map<(hostname: string) => void, () => void>();
  let resolveOpened!: () => void;
  const opened = new Promise<void>((resolve) => {
    resolveOpened = resolve;
  });

  const attempt = async () => {
    timer = undefined;
    if (closed) return;
    try {
      const store = await open();
      if (closed) {
        await store.close();
        return;
      }
      real = store;
      for (const listener of waiting.keys()) waiting.set(listener, store.subscribeServingChanges(listener));
      onOpen?.();
      resolveOpened();
      for (const listener of waiting.keys()) listener(ALL_HOSTNAMES);
    } catch (error) {
      lastError = error;
      timer = setTimeout(() => void attempt(), retryMs);
      timer.unref();
    }
  };
  timer = setTimeout(() => void attempt(), retryMs);
  timer.unref();

  const own: Partial<Store> = {
    subscribeServingChanges(listener) {
      if (real) return real.subscribeServingChanges(listener);
      waiting.set(listener, () => {});
      return () => {
        waiting.get(listener)?.();
        waiting.delete(listener);
      };
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      for (const undo of waiting.values()) undo();
      waiting.clear();
      resolveOpened();
      await real?.close();
    },
  };
  // Every other member is the real store's once it is open; before that, a query that fails.
  const store = new Proxy(own as Store, {
    get(target, key, receiver) {
      if (key in own) return Reflect.get(target, key, receiver);
      if (real) {
        const value = Reflect.get(real, key);
        return typeof value === 'function' ? value.bind(real) : value;
      }
      if (key === 'then') return undefined;
      return () => Promise.reject(new StoreNotOpenError(lastError));
    },
  });
  return { store, opened };
}
