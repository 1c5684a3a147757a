# Berth's own image, for docker-compose.yml. NODE_IMAGE is node:20 where it can be pulled;
# without a registry, scripts/images.sh builds berth/node:20 (Debian 12 with this machine's
# Node.js 20) and `NODE_IMAGE=berth/node:20` builds on that instead.
ARG NODE_IMAGE=node:20-bookworm-slim
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY . .
RUN bash scripts/prepare.sh --build && npm prune --omit=dev --no-audit --no-fund --loglevel=error

FROM ${NODE_IMAGE}
# restic takes and restores backups (Debian's package, as on a host).
RUN apt-get update -q && apt-get install -y -q --no-install-recommends restic && rm -rf /var/lib/apt/lists/* && restic version
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/prisma ./prisma
COPY package.json ./
# Runs as root: access to the Docker socket is root-equivalent in any case.
EXPOSE 3000
CMD ["node", "dist/main.js"]
