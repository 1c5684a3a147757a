-- Each tenant's Swarm node (BERTH_ENGINE=swarm).

-- AlterTable
ALTER TABLE "Tenant" ADD COLUMN     "nodeId" TEXT;

-- CreateIndex
CREATE INDEX "Tenant_nodeId_idx" ON "Tenant"("nodeId");

