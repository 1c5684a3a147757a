#!/usr/bin/env node
// Compares Berth's live GraphQL schema with the committed contract, schema.graphql.
//   node scripts/graphql-schema.mjs [berth-url] [--write] [--accept-breaking] [--json] [--against file]
// berth-url defaults to $BERTH_URL or http://127.0.0.1:3000.
// Check (default): exit 0 when the live schema is schema.graphql; 1 when it breaks clients of
// schema.graphql (a field, type, argument or enum value removed or changed incompatibly);
// 3 when it only adds to it (run with --write to record the addition).
// --write records the live schema, refusing a breaking change unless --accept-breaking says it is deliberate.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  buildClientSchema,
  buildSchema,
  findBreakingChanges,
  findDangerousChanges,
  getIntrospectionQuery,
  lexicographicSortSchema,
  printSchema,
} from 'graphql';

const args = process.argv.slice(2);
const flag = (f) => args.includes(f);
const against = args.indexOf('--against');
const url =
  args.find((a, i) => !a.startsWith('--') && !(against >= 0 && i === against + 1)) ?? process.env.BERTH_URL ?? 'http://127.0.0.1:3000';
const file = against >= 0 ? args[against + 1] : join(import.meta.dirname, '..', 'schema.graphql');

const res = await fetch(new URL('/graphql', url), {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ query: getIntrospectionQuery({ descriptions: true }) }),
});
const body = await res.json();
if (!body.data) {
  console.error(`introspection failed: ${res.status} ${JSON.stringify(body.errors ?? body)}`);
  process.exit(2);
}
const live = lexicographicSortSchema(buildClientSchema(body.data));
const liveSdl = printSchema(live) + '\n';
const committedSdl = await readFile(file, 'utf8').catch(() => undefined);
const committed = committedSdl === undefined ? undefined : buildSchema(committedSdl);
const breaking = committed ? findBreakingChanges(committed, live) : [];
const dangerous = committed ? findDangerousChanges(committed, live) : [];
const same = committedSdl === liveSdl;

const report = { same, breaking, dangerous };
if (flag('--json')) process.stdout.write(JSON.stringify(report) + '\n');
else {
  for (const c of breaking) console.log(`BREAKING ${c.type}: ${c.description}`);
  for (const c of dangerous) console.log(`dangerous ${c.type}: ${c.description}`);
}

if (flag('--write')) {
  if (breaking.length && !flag('--accept-breaking')) {
    console.error('schema.graphql not written: the change breaks clients (see above); pass --accept-breaking if that is deliberate');
    process.exit(1);
  }
  if (!same) await writeFile(file, liveSdl);
  console.error(same ? 'schema.graphql is up to date' : 'schema.graphql written');
  process.exit(0);
}
if (breaking.length) {
  console.error('the live schema breaks clients of schema.graphql');
  process.exit(1);
}
if (!same) {
  console.error('the live schema differs from schema.graphql (additions only): record it with npm run contract');
  process.exit(3);
}
console.error('the live schema is schema.graphql');
