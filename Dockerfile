# Berth's own image, for docker-compose.yml on hosts that can pull node:20.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN bash scripts/prepare.sh --build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/prisma ./prisma
COPY package.json ./
# Runs as root: access to the Docker socket is root-equivalent in any case.
EXPOSE 3000
CMD ["node", "dist/main.js"]
