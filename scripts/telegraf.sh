#!/usr/bin/env bash
# Builds Telegraf, the peer the e2e bench stage measures beside the path (docs/performance.md,
# "The best peer, in the same run"), with only the plugins that stage uses, into
# .cache/telegraf/telegraf. A binary already there at the pinned version is reused;
# --rebuild builds anew. Prints the binary's path. Needs Go (Telegraf's go.mod says which).
set -euo pipefail

VERSION=v1.37.2
TAGS=custom,inputs.mqtt_consumer,outputs.postgresql,parsers.json

root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/.cache/telegraf
bin=$dir/telegraf

if [ "${1:-}" != "--rebuild" ] && [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "Telegraf ${VERSION#v}"; then
  echo "$bin"
  exit 0
fi

go=$(command -v go || true)
[ -n "$go" ] || [ ! -x /usr/local/go/bin/go ] || go=/usr/local/go/bin/go
if [ -z "$go" ]; then
  echo "telegraf.sh: Go is not installed (https://go.dev/dl/); Telegraf $VERSION needs the version its go.mod names" >&2
  exit 1
fi

# The module cache is read-only: the build works on a copy of the source.
mod=$("$go" mod download -json "github.com/influxdata/telegraf@$VERSION")
moddir=$(printf '%s\n' "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
if [ -z "$moddir" ] || [ ! -d "$moddir" ]; then
  echo "telegraf.sh: go mod download gave no source folder for telegraf@$VERSION:" >&2
  printf '%s\n' "$mod" >&2
  exit 1
fi
src=$dir/src-$VERSION
rm -rf "$src"
mkdir -p "$dir"
cp -r "$moddir" "$src"
chmod -R u+w "$src"

echo "telegraf.sh: building Telegraf $VERSION ($TAGS) in $src; the first build takes a minute or more" >&2
# -buildvcs=false: the copy sits inside this repo's work tree, whose git state is not Telegraf's.
(cd "$src" && GOFLAGS=-buildvcs=false "$go" build -tags "$TAGS" \
  -ldflags "-X github.com/influxdata/telegraf/internal.Version=${VERSION#v}" -o "$bin.tmp" ./cmd/telegraf)
mv "$bin.tmp" "$bin"
rm -rf "$src"
echo "$bin"
