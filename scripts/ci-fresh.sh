#!/usr/bin/env bash
# CI as it runs on a submission: a fresh clone of this checkout's HEAD beside ../shared, an empty
# pnpm store (so every package downloads and the native modules compile), then .ci/run.
# Prints the commit, the load and the duration. Usage: scripts/ci-fresh.sh [N] [commit] (N names the run;
# commit defaults to HEAD, and pins the runs of a series while work goes on in this checkout).
# For a busy machine, run `stress-ng --cpu 2` beside it.
set -u
n=${1:-1}
here=$(cd "$(dirname "$0")/.." && pwd)
dir=$(dirname "$here")/ci-run-$n
store=$(mktemp -d)
rm -rf "$dir"
git clone -q "$here" "$dir" || exit 1
cd "$dir" || exit 1
if [ -n "${2:-}" ]; then git checkout -q "$2" || exit 1; fi
start=$(date +%s)
echo "run $n: commit $(git rev-parse --short HEAD), load $(cut -d' ' -f1-3 /proc/loadavg), log $dir/ci.log"
npm_config_store_dir=$store timeout 5400 .ci/run >"$dir/ci.log" 2>&1
rc=$?
echo "run $n: exit $rc in $(($(date +%s) - start)) s, load $(cut -d' ' -f1-3 /proc/loadavg)"
grep '^\[ci\] phase' "$dir/ci.log"
rm -rf "$store"
exit "$rc"
