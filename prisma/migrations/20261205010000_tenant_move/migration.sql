-- A tenant moved to another Swarm node, through backup and restore (POST /v1/nodes/{id}/evacuate).

-- AlterEnum
ALTER TYPE "JobKind" ADD VALUE 'MOVE_TENANT';
