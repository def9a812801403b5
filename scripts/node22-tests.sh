#!/usr/bin/env bash
# The gateway's tests and the end-to-end tests on Node 22, the Node.js a release ships, beside
# the workspace's own run on Node 20: Node 22 and a better-sqlite3 built for it are taken from
# the x64 release (deploy/release.ts, which caches both under .cache/release/), and a preload
# (scripts/node22-addon.cjs) points the workspace's better-sqlite3 at that build, so the
# Node 20 build in node_modules stays as it is.
#
#   bash scripts/node22-tests.sh [folders...]   (default: gateway/test test)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=$root/.cache/node22
rm -rf "$out"
mkdir -p "$out"
node_modules/.bin/tsx deploy/release.ts gateway --arch x64 --out "$out" >/dev/null
tar -xzf "$out"/datalab-gateway-*-linux-x64.tar.gz -C "$out" --strip-components=1
export DATALAB_BETTER_SQLITE3_ADDON=$out/node_modules/better-sqlite3/build/Release/better_sqlite3.node
export NODE_OPTIONS="--require $root/scripts/node22-addon.cjs${NODE_OPTIONS:+ $NODE_OPTIONS}"
# Whatever a test starts as `node` is Node 22 too.
export PATH=$out/bin:$PATH
(cd gateway && node -e "new (require('better-sqlite3'))(':memory:').close()") || {
  echo "[node22] better-sqlite3 does not load on Node $(node --version) through $DATALAB_BETTER_SQLITE3_ADDON" >&2
  exit 1
}
echo "[node22] $(node --version), better-sqlite3 from $DATALAB_BETTER_SQLITE3_ADDON"
# Vitest's filters match any path containing them ("test" matches every file): the files are
# named by their absolute paths instead.
if [ $# -eq 0 ]; then set -- gateway/test test; fi
files=()
for dir in "$@"; do
  while IFS= read -r f; do files+=("$root/$f"); done < <(find "$dir" -name '*.test.ts' | sort)
done
exec node node_modules/vitest/vitest.mjs run "${files[@]}"
