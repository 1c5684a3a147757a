// Summarises a V8 .cpuprofile (node --cpu-prof) by where the time was spent: the package
// (node_modules/<name>), Berth's own code (dist/), Node internals, WebAssembly, GC, idle.
//   node bench/.out/cpu-profile-summary.js PROFILE.cpuprofile
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string };
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
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const total = new Map<string, number>();
let all = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  const b = bucket(byId.get(id)!);
  total.set(b, (total.get(b) ?? 0) + dt);
  all += dt;
});
const busy = all - (total.get('(idle)') ?? 0);
const rows = [...total.entries()].filter(([b]) => b !== '(idle)').sort((a, b) => b[1] - a[1]);
process.stdout.write(`busy ${(busy / 1e6).toFixed(1)} s of ${(all / 1e6).toFixed(1)} s profiled; self time by place:\n`);
for (const [b, t] of rows.slice(0, 15)) process.stdout.write(`  ${((100 * t) / busy).toFixed(1).padStart(5)}%  ${b}\n`);
