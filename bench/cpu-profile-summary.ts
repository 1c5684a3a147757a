// Summarises a V8 .cpuprofile (node --cpu-prof) by where the time was spent: the package
// (node_modules/<name>), Berth's own code (dist/), Node internals, WebAssembly, GC, idle.
//   node bench/.out/cpu-profile-summary.js PROFILE.cpuprofile [FROM_S TO_S]
// FROM_S and TO_S (seconds after the profile began) limit it to a window of the run.
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber?: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

function bucket(n: Node): string {
  const { url, functionName } = n.callFrame;
  if (functionName === '(idle)') return '(idle)';
  if (functionName === '(garbage collector)') return '(garbage collector)';
  if (functionName === '(program)') return '(program: native, outside JS)';
  if (url.startsWith('wasm://') || /^wasm-function|^\$/.test(functionName)) return 'WebAssembly (Prisma query compiler)';
  const m = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (m) return m[1].startsWith('@prisma/') ? `${m[1]} (incl. its wasm glue)` : m[1];
  if (url.includes('/dist/generated/prisma')) return 'generated Prisma client';
  if (url.includes('/dist/')) return "Berth's own code (dist/)";
  if (url.startsWith('node:') || url === '') return 'Node.js internals (http, net, streams...)';
  return url;
}

const profile = JSON.parse(readFileSync(process.argv[2], 'utf8')) as Profile;
const [fromUs, toUs] = [process.argv[3], process.argv[4]].map((v, i) => (v === undefined ? [0, Infinity][i] : Number(v) * 1e6));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const total = new Map<string, number>();
let all = 0;
let at = 0;
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const inclusive = new Map<string, number>();
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  at += dt;
  if (at < fromUs || at > toUs) return;
  const b = bucket(byId.get(id)!);
  total.set(b, (total.get(b) ?? 0) + dt);
  all += dt;
  if (b === '(idle)') return;
  // Inclusive time of Berth's own functions: each one on the sample's stack, once.
  const seen = new Set<string>();
  for (let n: Node | undefined = byId.get(id); n; n = byId.get(parent.get(n.id) ?? -1)) {
    const { url, functionName, lineNumber } = n.callFrame;
    const cut = url.indexOf('/dist/');
    if (cut < 0 || url.includes('/dist/generated/')) continue;
    const key = `${functionName || '(anonymous)'} ${url.slice(cut + 6)}:${(lineNumber ?? 0) + 1}`;
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + dt);
  }
});
const busy = all - (total.get('(idle)') ?? 0);
const rows = [...total.entries()].filter(([b]) => b !== '(idle)').sort((a, b) => b[1] - a[1]);
process.stdout.write(`busy ${(busy / 1e6).toFixed(1)} s of ${(all / 1e6).toFixed(1)} s profiled; self time by place:\n`);
for (const [b, t] of rows.slice(0, 15)) process.stdout.write(`  ${((100 * t) / busy).toFixed(1).padStart(5)}%  ${b}\n`);
const own = [...inclusive.entries()].sort((a, b) => b[1] - a[1]);
process.stdout.write("Berth's own functions, time including what they call:\n");
for (const [f, t] of own.slice(0, 25)) process.stdout.write(`  ${((100 * t) / busy).toFixed(1).padStart(5)}%  ${f}\n`);
