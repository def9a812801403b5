# syntax=docker/dockerfile:1
# The gateway: MQTT (and serial radios) → SQLite outbox → NATS JetStream.
# Build from the repository root (the pnpm workspace is the context):
#   docker build -f deploy/docker/gateway.Dockerfile -t datalab-gateway .
#   docker buildx build --platform linux/arm64,linux/arm/v7 -f deploy/docker/gateway.Dockerfile .
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
# better-sqlite3 (and serialport's bindings) compile here when no prebuilt binary matches the
# platform, which is the case on linux/arm/v7: the compiler stays in this stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml ./
RUN npm install -g --no-fund --no-audit "pnpm@$(node -p "require('./package.json').packageManager.split('@')[1]")"
COPY shared/package.json shared/
COPY sensors/package.json sensors/
COPY gateway/package.json gateway/
COPY hub/package.json hub/
COPY deploy/package.json deploy/
# Only to compile and bundle (esbuild comes with deploy/): no install scripts, so no native
# module is built here; `pnpm deploy` below builds those for the runtime folder.
RUN pnpm install --frozen-lockfile --ignore-scripts --filter "@datalab/gateway..." --filter @datalab/deploy
COPY shared/ shared/
COPY sensors/ sensors/
COPY gateway/ gateway/
COPY deploy/docker/bundle.mjs deploy/docker/
# The last step fails the build here, not at the first start, if the native module did not build.
RUN pnpm --filter @datalab/gateway deploy --prod --legacy --config.node-linker=hoisted /out \
 && node deploy/docker/bundle.mjs gateway /out \
 && rm -rf /out/test /out/bench /out/.scratch \
 && cd /out && node -e "new (require('better-sqlite3'))(':memory:').close()"

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    DATALAB_DATA_DIR=/var/lib/datalab \
    DATALAB_HTTP_PORT=9101
WORKDIR /app
COPY --from=build /out /app
# The outbox lives in a volume owned by the unprivileged user. For serial radios, run with
# --device /dev/ttyUSB0 and --group-add dialout (the node user is not in it by default).
RUN mkdir -p /var/lib/datalab && chown node:node /var/lib/datalab
VOLUME /var/lib/datalab
USER node
EXPOSE 9101
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.DATALAB_HTTP_PORT||9101)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The same V8 limits as the Pi unit (docs/performance.md).
ENTRYPOINT ["node", "--max-semi-space-size=1", "--max-old-space-size=64", "dist/cli.mjs"]
CMD ["run"]
