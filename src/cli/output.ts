import { stripVTControlCharacters } from 'node:util';

/** A stream the CLI writes to; `isTTY` and `columns` are set on terminals only. */
export interface OutputStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** One table cell: a value, or several shown one per line. */
export type Cell = string | readonly string[];

export interface OutputOptions {
  /** Print JSON for scripts instead of text for people. */
  json?: boolean;
  stdout?: OutputStream;
  stderr?: OutputStream;
  env?: Record<string, string | undefined>;
}

type Paint = (text: string) => string;

export interface Palette {
  bold: Paint;
  dim: Paint;
  red: Paint;
  green: Paint;
  yellow: Paint;
  cyan: Paint;
}

const sgr =
  (open: number, close: number): Paint =>
  (text) =>
    `\u001b[${open}m${text}\u001b[${close}m`;

const COLORS: Palette = {
  bold: sgr(1, 22),
  dim: sgr(2, 22),
  red: sgr(31, 39),
  green: sgr(32, 39),
  yellow: sgr(33, 39),
  cyan: sgr(36, 39),
};

const identity: Paint = (text) => text;
const PLAIN: Palette = {
  bold: identity,
  dim: identity,
  red: identity,
  green: identity,
  yellow: identity,
  cyan: identity,
};

/**
 * Colors only where a person reads them: on a terminal, unless NO_COLOR asks otherwise
 * (no-color.org: any non-empty value) or the terminal says it cannot (TERM=dumb). Piped output
 * stays free of escape codes, so `grep` and log files see plain text.
 */
function wantsColor(stream: OutputStream, env: Record<string, string | undefined>): boolean {
  return stream.isTTY === true && !env.NO_COLOR && env.TERM !== 'dumb';
}

/** Where every command writes: text for people on stdout, problems on stderr, or JSON for scripts. */
export class Output {
  readonly json: boolean;
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  /** Styles for stdout; identity functions when colors are off. */
  readonly style: Palette;
  private readonly errorStyle: Palette;

  constructor(options: OutputOptions = {}) {
    const env = options.env ?? process.env;
    this.json = options.json ?? false;
    this.stdout = options.stdout ?? process.stdout;
    this.stderr = options.stderr ?? process.stderr;
    this.style = wantsColor(this.stdout, env) ? COLORS : PLAIN;
    this.errorStyle = wantsColor(this.stderr, env) ? COLORS : PLAIN;
  }

  /** Whether stdout is a terminal: spinners and prompts only make sense there. */
  get interactive(): boolean {
    return this.stdout.isTTY === true;
  }

  line(text = ''): void {
    this.stdout.write(`${text}\n`);
  }

  /** Writes `value` as indented JSON, the whole of stdout for a `--json` command. */
  printJson(value: unknown): void {
    this.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** A remark for the person that is not the command's result (kept off stdout for pipes). */
  note(text: string): void {
    this.stderr.write(`${text}\n`);
  }

  /** A failure, prefixed so it reads as the command's own message among other output. */
  error(text: string): void {
    this.stderr.write(`${this.errorStyle.red('portico:')} ${text}\n`);
  }

  /** Labelled values, one per line, the values aligned: the view of a single resource. */
  fields(pairs: readonly (readonly [label: string, value: string])[], indent = '  '): void {
    const width = Math.max(0, ...pairs.map(([label]) => label.length));
    for (const [label, value] of pairs) {
      this.line(`${indent}${this.style.dim(label.padEnd(width))}   ${value}`);
    }
  }

  /** Under a list that is one page of several: which items these are and how to get the next. */
  pageFooter(shown: number, page: { total: number; offset: number; has_next: boolean }, noun: string): void {
    if (!page.has_next && page.offset === 0) return;
    const range = `${page.offset + 1}–${page.offset + shown} of ${page.total} ${noun}`;
    const next = page.has_next ? `; next page: --offset ${page.offset + shown}` : '';
    this.line(this.style.dim(`\n${range}${next}`));
  }

  table(headers: readonly string[], rows: readonly (readonly Cell[])[], indent = ''): void {
    const text = renderTable(
      headers.map((header) => this.style.bold(header)),
      rows,
      indent,
    );
    this.stdout.write(text);
  }
}

/**
 * Aligned columns, separated by three spaces, with nothing that would end up in a copied value:
 * no borders, no quotes, no trailing spaces. Widths count visible characters, so colored cells
 * align with plain ones. A multi-valued cell takes one line per value.
 */
export function renderTable(
  headers: readonly string[],
  rows: readonly (readonly Cell[])[],
  indent = '',
): string {
  const lines = (cell: Cell | undefined): readonly string[] =>
    cell === undefined ? [''] : typeof cell === 'string' ? [cell] : cell.length > 0 ? cell : [''];
  const width = (text: string) => stripVTControlCharacters(text).length;
  const widths = headers.map((header, column) =>
    Math.max(width(header), ...rows.flatMap((row) => lines(row[column]).map(width))),
  );
  const render = (cells: readonly string[]) =>
    indent +
    cells
      .map((cell, column) =>
        column === cells.length - 1 ? cell : cell + ' '.repeat((widths[column] ?? 0) - width(cell)),
      )
      .join('   ')
      .trimEnd();

  const out = [render(headers)];
  for (const row of rows) {
    const height = Math.max(...headers.map((_, column) => lines(row[column]).length));
    for (let i = 0; i < height; i++)
      out.push(render(headers.map((_, column) => lines(row[column])[i] ?? '')));
  }
  return `${out.join('\n')}\n`;
}
