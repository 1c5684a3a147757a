import { defineConfig } from 'prisma/config';

// Used by the Prisma CLI (generate; migrate deploy where the schema engine is available).
// Berth applies prisma/migrations itself at start-up, see src/database/migrator.ts.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://localhost/berth' },
});
