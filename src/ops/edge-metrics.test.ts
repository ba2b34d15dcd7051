import { describe, expect, it } from 'vitest';
import { systemClock } from '../domain/clock.js';
import type { Store } from '../store/store.js';
import { bucketOf, EDGE_DURATION_BUCKETS, EdgeMetricsBatch } from './edge-metrics.js';
import { Metrics } from './metrics.js';

/**
 * The edge metrics only: the store-read gauges of `Metrics` are collected at scrape time, and
 * nothing here scrapes them, so no store is opened for it.
 */
const metrics = () => new Metrics({} as Store, systemClock);

const edgeSeries = async (m: Metrics) => ({
  requests: (await m.edgeRequests.get()).values.map(({ metricName, labels, value }) => ({
    metricName,
    labels,
    value: metricName?.endsWith('_sum') ? Number(value.toFixed(9)) : value,
  })),
  contexts: (await m.edgeTlsContextsBuilt.get()).values.map(({ value }) => value),
});

/** Durations on bucket bounds (their mean must not slip into the next bucket), between, and past the last. */
const ANSWERS: [number, number][] = [
  [200, 0],
  [200, 0.0004],
  [200, 0.005],
  [200, 0.005],
  [200, 0.005],
  [200, 0.1 + 0.2],
  [204, 0.0123],
  [301, 0.001],
  [404, 9.99],
  [502, 10],
  [502, 10.5],
  [503, 61.25],
  [200, 0.3],
];

describe('edge metrics relayed from an edge worker', () => {
  it('put every answer in the bucket Prometheus would', () => {
    expect(bucketOf(0)).toBe(0);
    expect(bucketOf(0.001)).toBe(0);
    expect(bucketOf(0.0010001)).toBe(1);
    expect(bucketOf(10)).toBe(EDGE_DURATION_BUCKETS.length - 1);
    expect(bucketOf(10.01)).toBe(EDGE_DURATION_BUCKETS.length);
  });

  it('add up in the primary to what the answers observed one by one give: buckets, count and sum', async () => {
    const direct = metrics();
    const relayed = metrics();
    const batch = new EdgeMetricsBatch();
    for (const [status, seconds] of ANSWERS) {
      direct.observeEdgeResponse(status, seconds);
      batch.observeEdgeResponse(status, seconds);
    }
    for (let i = 0; i < 3; i++) {
      direct.countTlsContextBuilt();
      batch.countTlsContextBuilt();
    }
    const delta = batch.take();
    // Over IPC, as JSON.
    relayed.addEdgeMetrics(JSON.parse(JSON.stringify(delta)));

    const expected = await edgeSeries(direct);
    expect(expected.requests.length).toBeGreaterThan(20);
    expect(await edgeSeries(relayed)).toEqual(expected);
  });

  it('start over after each delta, and have nothing to send when nothing happened', () => {
    const batch = new EdgeMetricsBatch();
    expect(batch.take()).toBeUndefined();
    batch.observeEdgeResponse(200, 0.002);
    batch.observeEdgeResponse(200, 0.003);
    expect(batch.take()).toEqual({ responses: [['2xx', 1, 2, 0.005]], tlsContextsBuilt: 0 });
    expect(batch.take()).toBeUndefined();
    batch.countTlsContextBuilt();
    expect(batch.take()).toEqual({ responses: [], tlsContextsBuilt: 1 });
  });
});
