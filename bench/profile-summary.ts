/**
 * Summarizes a V8 CPU profile (`node --cpu-prof`, e.g. the edge's with BENCH_EDGE_CPU_PROF=<dir>):
 * self time by area (Portico's modules, each package, Node's internals, GC, idle) and the functions
 * with the most self time.
 *
 *   node --import tsx bench/profile-summary.ts <file.cpuprofile> [top=30] [skip-seconds=0]
 *
 * `skip-seconds` leaves out the profile's first seconds (the process's start-up, module loading).
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Where a function lives, coarsely: `src/edge`, `node_modules/undici`, `node:internal`, `(gc)`. */
function areaOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return `node_modules/${modules[1]}`;
  const source = /\/(src\/[^/]+)\//.exec(url);
  if (source) return source[1] as string;
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  return url;
}

const [file, topArg, skipArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: profile-summary.ts <file.cpuprofile> [top]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
// Self time per node from the samples and their time deltas (µs), more exact than hitCount × interval.
const selfUs = new Map<number, number>();
const from = profile.startTime + Number(skipArg ?? 0) * 1e6;
let at = profile.startTime;
let counted = 0;
profile.samples.forEach((id, i) => {
  const delta = profile.timeDeltas[i] ?? 0;
  at += delta;
  if (at < from) return;
  counted += delta;
  selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
});
const totalUs = counted;

const areas = new Map<string, number>();
const functions = new Map<string, number>();
for (const [id, us] of selfUs) {
  const node = byId.get(id);
  if (!node) continue;
  const { functionName, url, lineNumber } = node.callFrame;
  const area = areaOf(url, functionName);
  areas.set(area, (areas.get(area) ?? 0) + us);
  const key = `${functionName || '(anonymous)'} ${url ? `${url.replace(/^file:\/\/.*?\/(src|node_modules)\//, '$1/')}:${lineNumber + 1}` : ''}`;
  functions.set(key, (functions.get(key) ?? 0) + us);
}

const idle = areas.get('(idle)') ?? 0;
const busy = totalUs - idle;
const pct = (us: number, of: number) => `${((100 * us) / of).toFixed(1)}%`;
console.log(
  `profile: ${(totalUs / 1e6).toFixed(1)} s, busy ${(busy / 1e6).toFixed(1)} s (${pct(busy, totalUs)})`,
);
console.log('\n| area | self s | % of busy |\n|:---|---:|---:|');
for (const [area, us] of [...areas].sort((a, b) => b[1] - a[1])) {
  if (area === '(idle)') continue;
  console.log(`| ${area} | ${(us / 1e6).toFixed(2)} | ${pct(us, busy)} |`);
}
console.log('\n| function | self s | % of busy |\n|:---|---:|---:|');
for (const [name, us] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 30))) {
  if (name.startsWith('(idle)')) continue;
  console.log(`| ${name.replaceAll('|', '\\|')} | ${(us / 1e6).toFixed(2)} | ${pct(us, busy)} |`);
}
