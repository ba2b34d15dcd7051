import { createInterface } from 'node:readline/promises';
import { CliError, EXIT } from './errors.js';

/**
 * Asks a person to confirm something that cannot be undone. Only a person at a terminal is asked:
 * with `--yes`, or when stdin is not a terminal (a script, CI), the answer is yes, since a script
 * that ran the command meant it. A "no" ends the command with exit code 1 and changes nothing.
 */
export async function confirm(question: string, assumeYes: boolean): Promise<void> {
  if (assumeYes || !process.stdin.isTTY) return;
  // The question goes to stderr so that stdout stays the command's result.
  const reader = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await reader.question(`${question} [y/N] `);
    if (/^y(es)?$/i.test(answer.trim())) return;
  } finally {
    reader.close();
  }
  throw new CliError('cancelled, nothing was changed', EXIT.failed);
}
