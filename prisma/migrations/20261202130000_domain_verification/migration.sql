-- Domains can wait for their owner to show control of them (a TXT record) before they are
-- routed; those added before this were routed at once and count as verified.

-- AlterTable
ALTER TABLE "Domain" ADD COLUMN     "verificationToken" TEXT,
ADD COLUMN     "verifiedAt" TIMESTAMP(3);

-- CreateIndex
CREATE INDEX "Domain_verifiedAt_idx" ON "Domain"("verifiedAt");

UPDATE "Domain" SET "verifiedAt" = "createdAt";
