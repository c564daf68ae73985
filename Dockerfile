# The deploy worker image. `docker-compose.yml` builds it; any orchestrator can run it (see docs/production.md).
ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: compile TypeScript and prebundle the workflow code (npm run build writes dist/workflow-bundle.js) ---
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && test -s dist/workflow-bundle.js

# --- runtime: production dependencies and the compiled code only ---
FROM ${NODE_IMAGE} AS runtime
# The Helm-charts adapter drives the git executable (simple-git); openssh-client serves ssh:// and git@ remotes
# and its ssh-keygen checks signed approvals.
RUN apt-get update \
  && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The worker's clone of the charts repo (a cache, one per container) lives under .data, owned by the
# unprivileged user. The CLI is runnable from the image too: `docker run … dist/client/cli.js status …`.
RUN mkdir -p /app/.data && chown 1000:1000 /app/.data && chmod +x dist/client/cli.js

# MALLOC_ARENA_MAX: see worker/process-env.ts (fewer malloc arenas, a smaller worker).
ENV DEPLOY_METRICS_ADDRESS=0.0.0.0:9464 \
    CHARTS_WORKDIR=/app/.data/charts-workdir \
    MALLOC_ARENA_MAX=2
EXPOSE 9464

# The stock `node` user, by number, so that orchestrators can verify runAsNonRoot.
USER 1000:1000

# Healthy while the SDK runtime serves its Prometheus endpoint (it stops when the worker process ends).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "const port = (process.env.DEPLOY_METRICS_ADDRESS || '').split(':').pop(); fetch('http://127.0.0.1:' + port + '/metrics').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# --optimize-for-size: see worker/process-env.ts (smaller V8 heaps; Node refuses it in NODE_OPTIONS).
CMD ["node", "--optimize-for-size", "dist/worker/main.js"]
