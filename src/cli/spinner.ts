import type { OutputStream } from './output.js';

/**
 * Live progress of a long command. Lines that matter (a status change, a DNS problem) are kept as
 * lines everywhere; the transient status ("next check in 12s") is shown on a terminal only, as a
 * spinner line that is redrawn in place, because a log file or CI output would otherwise fill with
 * one line per tick.
 */
export interface Progress {
  /** Replaces the transient status; ignored when not on a terminal. */
  status(text: string): void;
  /** Prints a line that stays. */
  log(line: string): void;
  /** Clears the spinner and restores the cursor. Idempotent. */
  stop(): void;
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const FRAME_MS = 80;
const CLEAR_LINE = '\r\u001b[2K';
const HIDE_CURSOR = '\u001b[?25l';
const SHOW_CURSOR = '\u001b[?25h';

/** A spinner on a terminal, plain lines elsewhere. */
export function createProgress(stream: OutputStream): Progress {
  return stream.isTTY ? new Spinner(stream) : new PlainProgress(stream);
}

class PlainProgress implements Progress {
  constructor(private readonly stream: OutputStream) {}

  status(): void {}

  log(line: string): void {
    this.stream.write(`${line}\n`);
  }

  stop(): void {}
}

class Spinner implements Progress {
  private text = '';
  private frame = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly stream: OutputStream) {
    this.stream.write(HIDE_CURSOR);
    this.timer = setInterval(() => {
      this.frame = (this.frame + 1) % FRAMES.length;
      this.render();
    }, FRAME_MS);
    // The spinner never keeps the process alive on its own.
    this.timer.unref();
  }

  status(text: string): void {
    this.text = text;
    this.render();
  }

  log(line: string): void {
    if (this.timer === undefined) {
      this.stream.write(`${line}\n`);
      return;
    }
    this.stream.write(`${CLEAR_LINE}${line}\n`);
    this.render();
  }

  stop(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.stream.write(`${CLEAR_LINE}${SHOW_CURSOR}`);
  }

  private render(): void {
    if (this.timer === undefined) return;
    // A line longer than the terminal wraps, and `\r` would then redraw only its last row:
    // keep the spinner line within one row.
    const room = Math.max(10, (this.stream.columns ?? 80) - 3);
    const text = this.text.length > room ? `${this.text.slice(0, room - 1)}…` : this.text;
    this.stream.write(`${CLEAR_LINE}${FRAMES[this.frame]} ${text}`);
  }
}
