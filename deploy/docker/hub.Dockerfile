# syntax=docker/dockerfile:1
# The hub: JetStream consumers → PostgreSQL (and MongoDB), query API, live stream, dashboard.
# Build from the repository root (the pnpm workspace is the context):
#   docker build -f deploy/docker/hub.Dockerfile -t datalab-hub .
#   docker buildx build --platform linux/amd64,linux/arm64,linux/arm/v7 -f deploy/docker/hub.Dockerfile .
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# pnpm at the version the root package.json pins, with npm (corepack is not in every Node image).
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml ./
RUN npm install -g --no-fund --no-audit "pnpm@$(node -p "require('./package.json').packageManager.split('@')[1]")"
# Manifests first: the dependency layer is rebuilt only when they or the lockfile change.
COPY shared/package.json shared/
COPY sensors/package.json sensors/
COPY gateway/package.json gateway/
COPY hub/package.json hub/
COPY deploy/package.json deploy/
# Only to compile and bundle (esbuild comes with deploy/): no install scripts, so no native
# module is built here; `pnpm deploy` below builds those for the runtime folder.
RUN pnpm install --frozen-lockfile --ignore-scripts --filter "@datalab/hub..." --filter @datalab/deploy
COPY shared/ shared/
COPY hub/ hub/
COPY deploy/docker/bundle.mjs deploy/docker/
# A flat node_modules with production dependencies only, then the CLI compiled into one file.
RUN pnpm --filter @datalab/hub deploy --prod --legacy --config.node-linker=hoisted /out \
 && node deploy/docker/bundle.mjs hub /out \
 && rm -rf /out/test /out/bench /out/.scratch

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    DATALAB_HTTP_PORT=8080
WORKDIR /app
# Owned by root, run as `node`: the process cannot rewrite its own code.
COPY --from=build /out /app
USER node
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.DATALAB_HTTP_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "--enable-source-maps", "dist/cli.mjs"]
CMD ["run"]
