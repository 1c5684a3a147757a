-- A pending domain (BERTH_DOMAIN_VERIFICATION=dns) no longer blocks the hostname for every
-- other tenant: several sites may claim it, and the one whose TXT record shows ownership
-- gets it (the others' claims are removed then). A verified hostname still belongs to one
-- site across all tenants, through "verifiedHostname" (null while pending).

-- DropIndex
DROP INDEX "Domain_hostname_key";

-- DropIndex
DROP INDEX "Domain_siteId_idx";

-- AlterTable
ALTER TABLE "Domain" ADD COLUMN     "verifiedHostname" TEXT;

UPDATE "Domain" SET "verifiedHostname" = "hostname" WHERE "verifiedAt" IS NOT NULL;

-- CreateIndex
CREATE UNIQUE INDEX "Domain_verifiedHostname_key" ON "Domain"("verifiedHostname");

-- CreateIndex
CREATE INDEX "Domain_hostname_idx" ON "Domain"("hostname");

-- CreateIndex
CREATE UNIQUE INDEX "Domain_siteId_hostname_key" ON "Domain"("siteId", "hostname");
