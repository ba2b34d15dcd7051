/**
 * The Node.js options an edge process runs with, beside the ones it was started with.
 *
 * `--max-semi-space-size=16` caps V8's young generation at two 16 MiB semi-spaces, Node 20's own
 * default. Node 24 (V8 13) grows them with the allocation rate, up to 64 MiB each: under proxy load
 * an edge on Node 24 held 268 MB of RSS against 186 MB with the cap, for about 4% more CPU per
 * request (`npm run bench:edge:throughput`, measured side by side; the RSS target is 200 MB per
 * edge process). An operator's own `--max-semi-space-size` (on the command line or in
 * NODE_OPTIONS) is kept: theirs is the choice.
 */
export const EDGE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=16'];

/** `execArgv` with EDGE_NODE_FLAGS added, but for those the process or NODE_OPTIONS already sets. */
export function withEdgeNodeFlags(
  execArgv: readonly string[],
  nodeOptions: string | undefined = process.env.NODE_OPTIONS,
): string[] {
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)];
  const missing = EDGE_NODE_FLAGS.filter((flag) => {
    const name = flag.split('=')[0] as string;
    // V8 accepts both spellings of a flag's words.
    const spellings = [name, name.replaceAll('-', '_').replace(/^__/, '--')];
    return !given.some((option) =>
      spellings.some((spelling) => option === spelling || option.startsWith(`${spelling}=`)),
    );
  });
  return [...execArgv, ...missing];
}
