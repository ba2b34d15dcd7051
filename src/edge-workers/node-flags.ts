/**
 * The Node.js options and environment an edge process runs with, beside the ones it was started
 * with. Both bound memory that the edge's work would otherwise hold on to; the target is 200 MB of
 * RSS per edge process with the certificate cache full (`npm run bench:edge:start`), of which about
 * 60 MB on Node 24 is the runtime's binary, mapped from its file and shared by every worker.
 *
 * `--max-semi-space-size=8` caps V8's young generation at two 8 MiB semi-spaces. Node 24 (V8 13)
 * grows them with the allocation rate up to 64 MiB each, and once grown they stay committed: under
 * proxy load an edge on Node 24 held 268 MB of RSS unbounded, 186 MB at 16 MiB (Node 20's own
 * default), and with the cache full the young generation alone was 32 MB of heap at 16 MiB against
 * 16 MB at 8 (v8.getHeapSpaceStatistics), for a few percent more CPU per request, the scavenges
 * being more frequent (`npm run bench:edge:throughput` prints the figures).
 *
 * An operator's own `--max-semi-space-size` (on the command line or in NODE_OPTIONS) is kept:
 * theirs is the choice.
 */
export const EDGE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];

/**
 * `MALLOC_ARENA_MAX=2`: glibc's malloc gives each thread that allocates an arena of its own, up to
 * eight per core, and memory freed in one is not returned to the system while the arena still
 * holds live blocks. An edge allocates from V8's background threads and libuv's pool as well as
 * its main thread, and its TLS contexts (tens of KiB each, in OpenSSL's memory) come and go as the
 * certificate cache evicts them: with two arenas the same edge held 5 to 10 MB less RSS, its
 * certificate cache full, in every run. glibc reads it when the process starts, so it is set in
 * the environment of the processes Portico starts (edge workers, and `npm start`); an operator's
 * own value is kept. Other C libraries (musl) ignore it.
 */
export const EDGE_ENVIRONMENT: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

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

/**
 * `env` with EDGE_ENVIRONMENT added, but for the variables it, or the environment a child inherits
 * beside it (`cluster.fork` merges the two), already sets.
 */
export function withEdgeEnvironment(
  env: NodeJS.ProcessEnv,
  inherited: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  const missing = Object.entries(EDGE_ENVIRONMENT).filter(
    ([name]) => env[name] === undefined && inherited[name] === undefined,
  );
  return { ...env, ...Object.fromEntries(missing) };
}
