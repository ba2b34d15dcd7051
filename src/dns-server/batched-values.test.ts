import { describe, expect, it } from 'vitest';
import { batchedValues, type ReadValues } from './batched-values.js';

/** A store whose reads the test finishes by hand, and whose records it changes in between. */
function controlledStore() {
  const records = new Map<string, string[]>();
  const reads: { labels: readonly string[]; finish: () => void; fail: (error: Error) => void }[] = [];
  const read: ReadValues = (labels) =>
    new Promise((resolve, reject) => {
      // What the read sees is what is there when it starts, as a database statement sees it.
      const seen = labels.flatMap((label) => (records.get(label) ?? []).map((value) => ({ label, value })));
      reads.push({ labels, finish: () => resolve(seen), fail: reject });
    });
  return { records, reads, read };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('batchedValues', () => {
  it('reads at once for a lone query', async () => {
    const store = controlledStore();
    store.records.set('a', ['1', '2']);
    const values = batchedValues(store.read);
    const answer = values('a');
    expect(store.reads.map((read) => read.labels)).toEqual([['a']]);
    store.reads[0]?.finish();
    expect(await answer).toEqual(['1', '2']);
  });

  it('asks once for the labels of the queries that arrived during a read, each label once', async () => {
    const store = controlledStore();
    store.records.set('b', ['b1']);
    store.records.set('c', ['c1']);
    const values = batchedValues(store.read);
    const first = values('a');
    const waiting = [values('b'), values('c'), values('b')];
    expect(store.reads).toHaveLength(1);
    store.reads[0]?.finish();
    expect(await first).toEqual([]);
    await settle();
    expect(store.reads.map((read) => read.labels)).toEqual([['a'], ['b', 'c']]);
    store.reads[1]?.finish();
    expect(await Promise.all(waiting)).toEqual([['b1'], ['c1'], ['b1']]);
  });

  it('never answers a query from a read that started before it arrived', async () => {
    const store = controlledStore();
    const values = batchedValues(store.read);
    const before = values('label');
    // The issuer writes while that read is in flight, then the CA asks.
    store.records.set('label', ['written']);
    const after = values('label');
    store.reads[0]?.finish();
    expect(await before).toEqual([]);
    await settle();
    store.reads[1]?.finish();
    expect(await after).toEqual(['written']);
  });

  it('fails every query of a failed read, and reads again for the next ones', async () => {
    const store = controlledStore();
    const values = batchedValues(store.read);
    const first = values('a');
    const second = values('b');
    store.reads[0]?.fail(new Error('store down'));
    await expect(first).rejects.toThrow('store down');
    await settle();
    store.reads[1]?.fail(new Error('still down'));
    await expect(second).rejects.toThrow('still down');
    store.records.set('c', ['back']);
    const third = values('c');
    store.reads[2]?.finish();
    expect(await third).toEqual(['back']);
  });

  it('asks for at most 500 labels in one read', async () => {
    const store = controlledStore();
    const values = batchedValues(store.read);
    const all = [values('first'), ...Array.from({ length: 700 }, (_, i) => values(`l${i}`))];
    store.reads[0]?.finish();
    await settle();
    expect(store.reads[1]?.labels).toHaveLength(500);
    store.reads[1]?.finish();
    await settle();
    expect(store.reads[2]?.labels).toHaveLength(200);
    store.reads[2]?.finish();
    expect(await Promise.all(all)).toHaveLength(701);
  });
});
