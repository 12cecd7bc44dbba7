# pulse-bridge: one image for every role (migrate, bridge, worker, dashboard, start).
# Build: docker build -t pulse-bridge .   Run: see docker-compose.yml.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY vendor ./vendor
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY prisma ./prisma
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
# hg-sync shells out to Mercurial and git; tini reaps them and forwards SIGTERM.
RUN apt-get update \
 && apt-get install -y --no-install-recommends mercurial git ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    CLONES_DIR=/data/clones \
    DASHBOARD_HOST=0.0.0.0
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
# dist/vcs/hg_host_guard.py (copied there by `npm run build`) is loaded by every hg clone and
# pull: without it hg-sync refuses to run hg against a server.
COPY --from=build /app/dist ./dist
# migrate reads the migrations (and the schema) at run time.
COPY --from=build /app/prisma ./prisma
RUN useradd --system --uid 10001 --home-dir /app pulse \
 && mkdir -p /data/clones && chown -R pulse /data
USER pulse
VOLUME ["/data/clones"]
EXPOSE 3000
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/cli.js"]
CMD ["start"]
