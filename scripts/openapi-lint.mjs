#!/usr/bin/env node
// Lints Berth's OpenAPI document with Redocly's recommended ruleset, offline.
//   node scripts/openapi-lint.mjs <http://berth/docs-json | file.json> [--json]
// Exits 1 when the linter reports an error. With --json, prints {errors, warnings, problems}.
import { readFile } from 'node:fs/promises';
import { createConfig, formatProblems, lintFromString } from '@redocly/openapi-core';

const [where, flag] = process.argv.slice(2);
if (!where) {
  console.error('usage: openapi-lint.mjs <url|file> [--json]');
  process.exit(2);
}
const source = /^https?:\/\//.test(where) ? await (await fetch(where)).text() : await readFile(where, 'utf8');
const config = await createConfig({ extends: ['recommended'] });
const problems = await lintFromString({ source, absoluteRef: 'berth-openapi.json', config });
const count = (severity) => problems.filter((p) => p.severity === severity).length;
if (flag === '--json') {
  const brief = problems.map((p) => ({
    rule: p.ruleId,
    severity: p.severity,
    message: p.message,
    at: p.location.map((l) => l.pointer).join(' '),
  }));
  process.stdout.write(JSON.stringify({ errors: count('error'), warnings: count('warn'), problems: brief }) + '\n');
} else {
  formatProblems(problems, { format: 'stylish', totals: { errors: count('error'), warnings: count('warn'), ignored: 0 }, version: '' });
}
process.exit(count('error') ? 1 : 0);
