-- Scheduled backups and their retention, per site.

-- AlterEnum
ALTER TYPE "BackupKind" ADD VALUE 'SCHEDULED';

-- AlterTable
ALTER TABLE "Site" ADD COLUMN     "backupIntervalHours" INTEGER NOT NULL DEFAULT 24,
ADD COLUMN     "backupKeepDaily" INTEGER NOT NULL DEFAULT 7,
ADD COLUMN     "backupKeepWeekly" INTEGER NOT NULL DEFAULT 4,
ADD COLUMN     "nextBackupAt" TIMESTAMP(3);

-- CreateIndex
CREATE INDEX "Site_nextBackupAt_idx" ON "Site"("nextBackupAt");
