-- WordPress is installed for the site's owner by the site's job. Sites from before keep
-- installedAt null, so their next job installs WordPress (or finds it installed).

-- AlterTable
ALTER TABLE "Site" ADD COLUMN     "wordpress" JSONB,
ADD COLUMN     "installedAt" TIMESTAMP(3),
ADD COLUMN     "wordpressUrl" TEXT,
ADD COLUMN     "adminPasswordSealed" TEXT;

-- AlterTable
ALTER TABLE "EmailNotification" ADD COLUMN     "sensitive" BOOLEAN NOT NULL DEFAULT false;
