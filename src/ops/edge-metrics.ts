/**
 * The edge's metrics as an edge worker (src/edge-workers/) gathers them: counted in the worker,
 * handed to the primary as deltas (`EdgeMetricsBatch.take`), and added there to the one `Metrics`
 * that `/metrics` shows (`Metrics.addEdgeMetrics`).
 *
 * Why deltas into the primary's counters rather than prom-client's cluster aggregation (each worker
 * asked for its registry at scrape time and the answers summed): a worker that dies takes its
 * counts with it, so the sum would fall, and Prometheus reads a counter that falls as a reset and
 * invents an increase. Added to the primary's counters, what every worker counted stays counted
 * for as long as the primary runs, replacements included.
 */

/** Upper bounds (seconds) of `portico_edge_request_duration_seconds`' buckets; past the last, +Inf. */
export const EDGE_DURATION_BUCKETS: readonly number[] = [
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/**
 * What an edge worker counted since its last delta. `responses` has one entry per status class
 * and bucket with answers in it: [status class, bucket index (EDGE_DURATION_BUCKETS.length for
 * +Inf), answers, the sum of their durations in seconds]. Plain JSON: it travels over IPC.
 */
export interface EdgeMetricsDelta {
  responses: [statusClass: string, bucket: number, count: number, seconds: number][];
  tlsContextsBuilt: number;
}

/** The bucket a duration falls in: the first whose upper bound it does not exceed (le, as Prometheus has it). */
export function bucketOf(seconds: number): number {
  let index = 0;
  while (index < EDGE_DURATION_BUCKETS.length && seconds > (EDGE_DURATION_BUCKETS[index] as number)) index++;
  return index;
}

/**
 * A duration standing for `count` answers of one bucket whose durations add up to `seconds`: their
 * mean, which lies in the bucket as each of them does (kept inside it against rounding). Observed
 * `count` times it gives the histogram the same bucket counts, count and sum as the answers
 * themselves.
 */
export function representative(bucket: number, count: number, seconds: number): number {
  const mean = seconds / count;
  const upper = EDGE_DURATION_BUCKETS[bucket] ?? Number.POSITIVE_INFINITY;
  const lower = bucket === 0 ? Number.NEGATIVE_INFINITY : (EDGE_DURATION_BUCKETS[bucket - 1] as number);
  if (mean > upper) return upper;
  if (mean <= lower) return upper === Number.POSITIVE_INFINITY ? lower * (1 + 1e-9) : upper;
  return mean;
}

/** Sums per status class and bucket as an edge worker answers, until the next `take()`. */
export class EdgeMetricsBatch {
  /** `{status class}:{bucket}` → [count, seconds]. */
  private responses = new Map<string, [number, number]>();
  private tlsContextsBuilt = 0;

  /** For the edge's `onResponse`: a few map operations, nothing sent. */
  readonly observeEdgeResponse = (status: number, seconds: number): void => {
    const key = `${Math.floor(status / 100)}xx:${bucketOf(seconds)}`;
    const sums = this.responses.get(key);
    if (sums) {
      sums[0] += 1;
      sums[1] += seconds;
    } else {
      this.responses.set(key, [1, seconds]);
    }
  };

  /** For the edge's `onTlsContextBuilt`. */
  readonly countTlsContextBuilt = (): void => {
    this.tlsContextsBuilt += 1;
  };

  /** What was counted since the last call, or undefined when nothing was; starts over. */
  take(): EdgeMetricsDelta | undefined {
    if (this.responses.size === 0 && this.tlsContextsBuilt === 0) return undefined;
    const delta: EdgeMetricsDelta = { responses: [], tlsContextsBuilt: this.tlsContextsBuilt };
    for (const [key, [count, seconds]] of this.responses) {
      const [statusClass = '', bucket = '0'] = key.split(':');
      delta.responses.push([statusClass, Number(bucket), count, seconds]);
    }
    this.responses = new Map();
    this.tlsContextsBuilt = 0;
    return delta;
  }
}
