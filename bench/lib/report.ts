/**
 * How the benchmarks print: Markdown tables, numbers with fixed digits, ratios to a baseline
 * measured in the same run, and a verdict against each target.
 */
import type { Figure } from './wrk.js';

/** `value` with `digits` decimals, 'n/a' when it is not a finite number (a figure that was not measured). */
export const fixed = (value: number, digits = 2): string =>
  Number.isFinite(value) ? value.toFixed(digits) : 'n/a';

/** Whether a figure met its target, as the tables of targets print it. */
export const verdict = (ok: boolean): string => (ok ? 'met' : '**missed**');

/** `value ÷ base` with two decimals, as every table of the benchmarks prints it ('n/a' when one is missing). */
export const ratio = (value: number | undefined, base: number | undefined): string =>
  value === undefined || base === undefined ? 'n/a' : (value / Math.max(base, 0.001)).toFixed(2);

/** Prints figures with their ratios to the first one, the baseline measured in the same run. */
export function report(title: string, figures: Figure[]): void {
  const [baseline] = figures;
  if (!baseline) return;
  const openedFirst = figures.some((figure) => figure.openedFirstP99Ms !== undefined);
  console.log(`\n${title}`);
  const head = ['load', 'req/s', 'p99 ms', 'req/s ÷ baseline', 'p99 ÷ baseline'];
  if (openedFirst) head.splice(3, 0, 'p99 ms, connections opened first');
  if (openedFirst) head.push('p99 ÷ baseline, connections opened first');
  console.log(`| ${[...head, 'failed'].join(' | ')} |`);
  console.log(
    `|---|${head
      .slice(1)
      .map(() => '---:|')
      .join('')}---:|`,
  );
  for (const figure of figures) {
    const cells = [
      figure.name,
      figure.requestsPerSecond.toFixed(0),
      figure.p99Ms.toFixed(1),
      ratio(figure.requestsPerSecond, baseline.requestsPerSecond),
      ratio(figure.p99Ms, baseline.p99Ms),
    ];
    if (openedFirst) {
      cells.splice(3, 0, figure.openedFirstP99Ms?.toFixed(1) ?? 'n/a');
      cells.push(ratio(figure.openedFirstP99Ms, baseline.openedFirstP99Ms));
    }
    console.log(`| ${[...cells, figure.errors].join(' | ')} |`);
  }
}

/** A Markdown table under `title`; `align` gives the separator of the first columns (numbers right-aligned after them). */
export function table(title: string, head: string[], rows: (string | number)[][], align?: string[]): void {
  console.log(`\n${title}`);
  console.log(`| ${head.join(' | ')} |`);
  console.log(`|${head.map((_, i) => align?.[i] ?? '---:').join('|')}|`);
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
}

/** One line of a run's closing table: a figure's value on each runtime (by label), and its target. */
export interface SummaryRow {
  figure: string;
  /** Cell per runtime label: the value, with its verdict when the figure has a target there. */
  byRuntime: Map<string, string>;
  target: string;
}

/** A figure's cell: `value`, and its verdict when `ok` is known (the target applies on that runtime). */
export const cell = (value: string, ok?: boolean): string =>
  ok === undefined ? value : `${value} (${verdict(ok)})`;

/** The run's figures side by side, a column per runtime (`labels`, in order). */
export function sideBySide(title: string, labels: string[], rows: SummaryRow[]): void {
  table(
    title,
    ['figure', ...labels, 'target'],
    rows.map((row) => [row.figure, ...labels.map((label) => row.byRuntime.get(label) ?? 'n/a'), row.target]),
    [':---'],
  );
}
