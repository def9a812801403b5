#!/usr/bin/env bash
# Install (Debian) and start the servers the tests talk to, on loopback, when they are not
# already answering: Mosquitto 1883, NATS with JetStream 4222, PostgreSQL 5432 (trust auth,
# database `test`), and FerretDB 27017 (a MongoDB wire-protocol server on PostgreSQL) when
# DATALAB_WITH_FERRETDB=1. Idempotent: what already runs is left alone.
set -euo pipefail

log() { printf '[services] %s\n' "$*" >&2; }
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  local port=$1 what=$2 i
  for i in $(seq 1 100); do
    answers "$port" && return 0
    sleep 0.2
  done
  log "$what did not start listening on $port"
  return 1
}

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

apt_updated=0
need_pkg() {
  # need_pkg COMMAND PACKAGE: install PACKAGE when COMMAND is missing.
  if ! command -v "$1" >/dev/null 2>&1 && [ ! -x "$1" ]; then
    if [ "$apt_updated" = 0 ]; then
      log "apt-get update"
      $SUDO apt-get update -qq
      apt_updated=1
    fi
    log "installing $2"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$2" >/dev/null
  fi
}

need_pkg mosquitto mosquitto
need_pkg mosquitto_pub mosquitto-clients
need_pkg nats-server nats-server
need_pkg psql postgresql
need_pkg socat socat
for extra in ${DATALAB_EXTRA_PACKAGES:-}; do
  need_pkg "${extra%%=*}" "${extra#*=}"
done

if ! answers 1883; then
  log "starting Mosquitto"
  conf=/etc/mosquitto/mosquitto.conf
  [ -f "$conf" ] && $SUDO mosquitto -d -c "$conf" || $SUDO mosquitto -d
  wait_port 1883 Mosquitto
fi

if ! answers 4222; then
  log "starting NATS with JetStream"
  $SUDO mkdir -p /var/lib/nats-server
  $SUDO start-stop-daemon --start --oknodo --background --exec "$(command -v nats-server)" -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_port 4222 NATS
fi

if ! answers 5432; then
  log "starting PostgreSQL"
  cluster_version=$(ls /etc/postgresql | sort -V | tail -1)
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$cluster_version" main start
  wait_port 5432 PostgreSQL
fi
# Trust auth on loopback and the `test` database, as the tests expect.
if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1; then
  log "PostgreSQL does not accept user postgres without a password on 127.0.0.1; configure trust auth for loopback"
  exit 1
fi
psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1 from pg_database where datname='test'" | grep -q 1 ||
  psql -h 127.0.0.1 -U postgres -d postgres -qc 'create database test'

if [ "${DATALAB_WITH_FERRETDB:-0}" = 1 ] && ! answers 27017; then
  command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
  FERRETDB="${FERRETDB_BIN:-$HOME/.cache/datalab/ferretdb-1.24.2}"
  if ! "$FERRETDB" --version >/dev/null 2>&1; then
    # A plain `go install` of v1.24.2 builds a binary that panics at start: the module lacks
    # build/version/version.txt, which FerretDB's release tooling writes. Build from a copy
    # of the module with that file in place.
    log "building FerretDB 1.24.2 (about a minute the first time)"
    src=$(GOTOOLCHAIN=local GOFLAGS=-mod=mod go mod download -json github.com/FerretDB/FerretDB@v1.24.2 |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    work=$(mktemp -d)
    cp -r "$src/." "$work/"
    chmod -R u+w "$work"
    echo v1.24.2 >"$work/build/version/version.txt"
    mkdir -p "$(dirname "$FERRETDB")"
    (cd "$work" && GOTOOLCHAIN=local GOFLAGS=-mod=mod go build -o "$FERRETDB" ./cmd/ferretdb)
    rm -rf "$work"
  fi
  psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1 from pg_database where datname='ferretdb'" | grep -q 1 ||
    psql -h 127.0.0.1 -U postgres -d postgres -qc 'create database ferretdb'
  log "starting FerretDB on 127.0.0.1:27017"
  nohup "$FERRETDB" --handler=postgresql --postgresql-url=postgres://postgres@127.0.0.1:5432/ferretdb \
    --listen-addr=127.0.0.1:27017 --telemetry=disable --log-level=warn \
    --state-dir="$(dirname "$FERRETDB")" >/tmp/ferretdb.log 2>&1 &
  wait_port 27017 FerretDB
fi
log "Mosquitto, NATS and PostgreSQL are answering"
