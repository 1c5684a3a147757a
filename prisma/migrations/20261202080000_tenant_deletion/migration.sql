-- Tenants can be deleted by a job that has no site, and that job (like the tenant's
-- events) outlives the tenant: Job.tenantId keeps the id but no longer references Tenant.

-- AlterEnum
ALTER TYPE "TenantStatus" ADD VALUE 'DELETING';

-- AlterEnum
ALTER TYPE "JobKind" ADD VALUE 'DELETE_TENANT';

-- DropForeignKey
ALTER TABLE "Job" DROP CONSTRAINT "Job_tenantId_fkey";

-- AlterTable
ALTER TABLE "Job" ALTER COLUMN "siteId" DROP NOT NULL;
