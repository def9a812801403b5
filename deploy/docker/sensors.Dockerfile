# syntax=docker/dockerfile:1
# Simulated sensors (and data-set replay) publishing to MQTT, as the DataLab's sensor side.
# Build from the repository root:
#   docker build -f deploy/docker/sensors.Dockerfile -t datalab-sensors .
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
# serialport's bindings ship prebuilt for arm64 and arm/v7; the compiler is here for any other.
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
RUN pnpm install --frozen-lockfile --ignore-scripts --filter "@datalab/sensors..." --filter @datalab/deploy
COPY shared/ shared/
COPY sensors/ sensors/
COPY deploy/docker/bundle.mjs deploy/docker/
RUN pnpm --filter @datalab/sensors deploy --prod --legacy --config.node-linker=hoisted /out \
 && node deploy/docker/bundle.mjs sensors /out \
 && rm -rf /out/test /out/bench /out/.scratch

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /out /app
USER node
ENTRYPOINT ["node", "--enable-source-maps", "dist/cli.mjs"]
CMD ["simulate", "--sensors", "10", "--interval", "5"]
