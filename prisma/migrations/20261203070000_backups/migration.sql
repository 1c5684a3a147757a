-- Backups: restic snapshots of a site's database dump and files, and the jobs that take
-- and restore them.

-- AlterEnum
ALTER TYPE "SiteStatus" ADD VALUE 'RESTORING';
ALTER TYPE "JobKind" ADD VALUE 'BACKUP';
ALTER TYPE "JobKind" ADD VALUE 'RESTORE';

-- CreateEnum
CREATE TYPE "BackupKind" AS ENUM ('MANUAL', 'CHECKPOINT');
CREATE TYPE "BackupStatus" AS ENUM ('PENDING', 'SUCCEEDED', 'FAILED', 'DELETED');

-- CreateTable
CREATE TABLE "Backup" (
    "id" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "siteId" UUID NOT NULL,
    "kind" "BackupKind" NOT NULL DEFAULT 'MANUAL',
    "status" "BackupStatus" NOT NULL DEFAULT 'PENDING',
    "jobId" UUID,
    "snapshotId" TEXT,
    "sizeBytes" BIGINT,
    "addedBytes" BIGINT,
    "durationMs" INTEGER,
    "wordpressVersion" TEXT,
    "image" TEXT,
    "wordpressUrl" TEXT,
    "tables" INTEGER,
    "error" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finishedAt" TIMESTAMP(3),

    CONSTRAINT "Backup_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Backup_siteId_createdAt_idx" ON "Backup"("siteId", "createdAt");
CREATE INDEX "Backup_tenantId_createdAt_idx" ON "Backup"("tenantId", "createdAt");

-- AddForeignKey
ALTER TABLE "Backup" ADD CONSTRAINT "Backup_siteId_fkey" FOREIGN KEY ("siteId") REFERENCES "Site"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
