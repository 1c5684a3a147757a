// Where Berth's resident memory goes: loads Berth's main dependencies one group after the
// other in a fresh process (run with --expose-gc) and prints the RSS after each, as JSON.
// Used by bench.ts for the footprint section; `node --expose-gc bench/.out/rss-by-module.js`.
/* eslint-disable @typescript-eslint/no-require-imports -- each group is required in turn to measure what it adds */
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '../..');
const gc = (globalThis as { gc?: () => void }).gc;

const steps: [string, () => unknown][] = [
  ['node itself', () => undefined],
  ['NestJS core + Express', () => [require('reflect-metadata'), require('@nestjs/core'), require('@nestjs/platform-express')]],
  ['GraphQL (@nestjs/graphql, Apollo)', () => [require('@nestjs/graphql'), require('@nestjs/apollo'), require('@apollo/server')]],
  ['@nestjs/swagger', () => require('@nestjs/swagger')],
  ['BullMQ + ioredis', () => [require('bullmq'), require('ioredis')]],
  ['dockerode', () => require('dockerode')],
  ['nodemailer, class-validator, zod', () => [require('nodemailer'), require('class-validator'), require('zod')]],
  [
    'Prisma client + adapter-pg, first queries',
    async () => {
      const { PrismaClient } = require(join(root, 'dist/generated/prisma/client'));
      const { PrismaPg } = require('@prisma/adapter-pg');
      const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: process.env.DATABASE_URL }) });
      await prisma.site.findMany({ take: 1 });
      await prisma.tenant.findMany({ take: 1 });
      await prisma.$disconnect();
      return prisma;
    },
  ],
];

async function main(): Promise<void> {
  const keep: unknown[] = [];
  const out: { step: string; rssMiB: number; addedMiB: number; heapUsedMiB: number }[] = [];
  let previous = 0;
  for (const [step, load] of steps) {
    keep.push(await load());
    gc?.();
    await new Promise((r) => setTimeout(r, 300));
    const m = process.memoryUsage();
    const rss = m.rss / 2 ** 20;
    out.push({ step, rssMiB: Math.round(rss), addedMiB: Math.round(rss - previous), heapUsedMiB: Math.round(m.heapUsed / 2 ** 20) });
    previous = rss;
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}

void main();
