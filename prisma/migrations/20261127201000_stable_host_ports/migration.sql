-- CreateIndex
CREATE UNIQUE INDEX "Site_hostPort_key" ON "Site"("hostPort");

