#!/usr/bin/env bash
# Install, upgrade or remove the Wireless Sensor DataLab gateway on Raspberry Pi OS (Debian
# bookworm or later, 32-bit armhf or 64-bit arm64; any other Debian works the same way).
#
#   sudo deploy/pi/install.sh                     install and start the service
#   sudo deploy/pi/install.sh --with-mosquitto    also a local Mosquitto broker with persistence
#   sudo deploy/pi/install.sh --upgrade           new code, same config and outbox, restart
#   sudo deploy/pi/install.sh --uninstall         remove; keeps /etc/datalab and the outbox
#   sudo deploy/pi/install.sh --uninstall --purge remove those too
#   DESTDIR=/tmp/root deploy/pi/install.sh        lay the files out under a scratch root only
#
# What it installs, from this checkout: the gateway with its production dependencies laid
# out by `pnpm deploy` and its code bundled into one file (dist/cli.mjs), built on this machine
# so that the native SQLite module matches its CPU (armv7l or aarch64). --prebuilt PATH takes
# such a folder (or a .tar.gz of one) built elsewhere on the same architecture instead.
# See docs/raspberry-pi.md.
set -euo pipefail

SRC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PI_DIR="$SRC_ROOT/deploy/pi"
DESTDIR=${DESTDIR:-}
APP_DIR=${DATALAB_APP_DIR:-/opt/datalab/gateway}
UNIT=datalab-gateway.service
ACTION=install
WITH_MOSQUITTO=0
PREBUILT=""
START=1
PURGE=0

log() { printf '[datalab] %s\n' "$*" >&2; }
die() {
  printf '[datalab] error: %s\n' "$*" >&2
  exit 1
}

usage() {
  sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  cat <<'EOF'
Options:
  --upgrade           replace the code, keep config and data, restart the service
  --uninstall         stop and remove the service and code (config and outbox stay)
  --purge             with --uninstall: also remove /etc/datalab, /var/lib/datalab, the user
  --with-mosquitto    install Mosquitto with a DataLab config (loopback, persistence)
  --prebuilt PATH     install this built gateway folder or .tar.gz instead of building
  --no-start          install but do not enable or start the service
  -h, --help          this text
Environment: DESTDIR (scratch root), DATALAB_APP_DIR (default /opt/datalab/gateway),
DATALAB_NODE (node binary to run the service with; default: the one on PATH).
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --upgrade) ACTION=upgrade ;;
    --uninstall) ACTION=uninstall ;;
    --purge) PURGE=1 ;;
    --with-mosquitto) WITH_MOSQUITTO=1 ;;
    --prebuilt)
      [ $# -ge 2 ] || die "--prebuilt needs a path"
      PREBUILT=$2
      shift
      ;;
    --no-start) START=0 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
  shift
done
[ "$PURGE" = 0 ] || [ "$ACTION" = uninstall ] || die "--purge goes with --uninstall"

# Changing this machine (services, users, udev), or only laying files out under DESTDIR.
live() { [ -z "$DESTDIR" ]; }

if live && [ "$(id -u)" -ne 0 ]; then
  die "run as root (sudo), or set DESTDIR to lay the files out under a scratch root"
fi

check_platform() {
  local arch
  arch=$(uname -m)
  case "$arch" in
    aarch64 | armv7l | x86_64) ;;
    armv6l) log "armv6l (Pi Zero / Pi 1): Node.js has no official builds for it; use an unofficial armv6l build of Node.js 20 or 22" ;;
    *) log "machine $arch: not a Raspberry Pi; continuing" ;;
  esac
  if [ -r /etc/os-release ] && ! grep -qiE '^(ID|ID_LIKE)=.*debian' /etc/os-release; then
    log "not a Debian-based system: the service and udev parts assume systemd and udev"
  fi
}

find_node() {
  NODE=${DATALAB_NODE:-$(command -v node || true)}
  [ -n "$NODE" ] || die "Node.js not found. Install Node.js 22 (20 also works), e.g. from Raspberry Pi OS's nodejs package or nodejs.org; see docs/raspberry-pi.md"
  NODE=$(readlink -f "$NODE")
  local version major minor
  version=$("$NODE" -p 'process.versions.node')
  major=${version%%.*}
  minor=${version#*.}
  minor=${minor%%.*}
  if [ "$major" -lt 20 ] || { [ "$major" -eq 20 ] && [ "$minor" -lt 19 ]; }; then
    die "Node.js $version is too old: 20.19 or later is needed, 22 is advised"
  fi
  [ "$major" -ge 22 ] || log "Node.js $version is supported; 22 is advised"
  log "using Node.js $version at $NODE"
}

pnpm_run() {
  local pinned
  pinned=$("$NODE" -p "require('$SRC_ROOT/package.json').packageManager.split('@')[1]")
  if command -v pnpm >/dev/null 2>&1 && [ "$(pnpm --version)" = "$pinned" ]; then
    (cd "$SRC_ROOT" && pnpm "$@")
  else
    (cd "$SRC_ROOT" && npx --yes "pnpm@$pinned" "$@")
  fi
}

# Build (or unpack) the gateway into $1, a folder that must not exist yet.
build_app() {
  local out=$1
  mkdir -p "$(dirname "$out")"
  if [ -n "$PREBUILT" ]; then
    if [ -d "$PREBUILT" ]; then
      cp -a "$PREBUILT" "$out"
    elif [ -f "$PREBUILT" ]; then
      mkdir -p "$out"
      tar -xzf "$PREBUILT" -C "$out"
    else
      die "--prebuilt $PREBUILT: no such folder or file"
    fi
  else
    # The bundler (esbuild, a dev dependency of deploy/) is all the build needs from the
    # checkout's own node_modules; an installed workspace is left as it is.
    if [ ! -e "$SRC_ROOT/deploy/node_modules/esbuild/package.json" ]; then
      log "installing the workspace's dependencies (frozen lockfile)"
      pnpm_run install --frozen-lockfile --ignore-scripts --filter "@datalab/gateway..." --filter @datalab/deploy
    fi
    log "laying out the gateway with its production dependencies in $out"
    pnpm_run --filter @datalab/gateway deploy --prod --legacy --config.node-linker=hoisted "$out"
    "$NODE" "$SRC_ROOT/deploy/docker/bundle.mjs" gateway "$out"
    rm -rf "$out/test" "$out/bench" "$out/.scratch"
  fi
  [ -f "$out/dist/cli.mjs" ] || die "$out has no dist/cli.mjs: not a built gateway"
  # Fail now, not at the first start, if the native module does not fit this machine.
  (cd "$out" && "$NODE" -e "new (require('better-sqlite3'))(':memory:').close()") ||
    die "better-sqlite3 does not load with $NODE on $(uname -m): build on this machine (without --prebuilt), with build tools installed (apt-get install -y python3 make g++)"
  if [ -f "$SRC_ROOT/docs/raspberry-pi.md" ]; then
    install -D -m 0644 "$SRC_ROOT/docs/raspberry-pi.md" "$out/docs/raspberry-pi.md"
  fi
}

# Replace the app folder with a freshly built one; the old one goes only once the new is whole.
install_app() {
  local app=$DESTDIR$APP_DIR
  rm -rf "$app.new" "$app.old"
  build_app "$app.new"
  if [ -e "$app" ]; then mv "$app" "$app.old"; fi
  mv "$app.new" "$app"
  rm -rf "$app.old"
  log "gateway installed in $app"
}

substitute() {
  sed -e "s|@NODE@|$NODE|g" -e "s|@APP_DIR@|$APP_DIR|g" -e "s|@GATEWAY_ID@|$GATEWAY_ID|g" "$1"
}

install_system_files() {
  local etc=$DESTDIR/etc
  substitute "$PI_DIR/datalab-gateway.service" | install -D -m 0644 /dev/stdin "$etc/systemd/system/$UNIT"
  install -D -m 0644 "$PI_DIR/99-datalab-radio.rules" "$etc/udev/rules.d/99-datalab-radio.rules"
  install -D -m 0644 "$PI_DIR/sysusers-datalab.conf" "$DESTDIR/usr/lib/sysusers.d/datalab.conf"
  substitute "$PI_DIR/datalab-gateway.sh" | install -D -m 0755 /dev/stdin "$DESTDIR/usr/local/bin/datalab-gateway"
  if [ "$WITH_MOSQUITTO" = 1 ]; then
    install -D -m 0644 "$PI_DIR/mosquitto-datalab.conf" "$etc/mosquitto/conf.d/datalab.conf"
  fi
}

# Config is written once: an upgrade or a second install never overwrites what was edited.
install_config() {
  local dir=$DESTDIR/etc/datalab group=root
  if live; then group=datalab; fi
  install -d -m 0750 -o root -g "$group" "$dir" 2>/dev/null || install -d -m 0750 "$dir"
  if [ ! -e "$dir/gateway.json" ]; then
    substitute "$PI_DIR/gateway.json" | install -m 0640 /dev/stdin "$dir/gateway.json"
    log "wrote $dir/gateway.json (gateway id \"$GATEWAY_ID\"): set natsUrl to your hub"
  else
    log "kept $dir/gateway.json"
  fi
  if [ ! -e "$dir/gateway.env" ]; then
    install -m 0640 "$PI_DIR/gateway.env" "$dir/gateway.env"
  else
    log "kept $dir/gateway.env"
  fi
  if live; then chown root:datalab "$dir" "$dir/gateway.json" "$dir/gateway.env"; fi
}

create_user() {
  if command -v systemd-sysusers >/dev/null 2>&1; then
    systemd-sysusers /usr/lib/sysusers.d/datalab.conf
  elif ! id datalab >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/datalab --no-create-home --shell /usr/sbin/nologin datalab
  fi
  # sysusers only adds the membership when it creates the user; make sure of it either way.
  usermod -a -G dialout datalab
}

install_mosquitto() {
  if ! command -v mosquitto >/dev/null 2>&1; then
    log "installing mosquitto"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mosquitto
  fi
  if ! grep -qE '^[[:space:]]*persistence[[:space:]]+true' /etc/mosquitto/mosquitto.conf 2>/dev/null; then
    log "warning: /etc/mosquitto/mosquitto.conf does not turn persistence on; add: persistence true"
  fi
  systemctl enable mosquitto
  systemctl restart mosquitto
}

gateway_id() {
  local host
  host=$(hostname 2>/dev/null || cat /etc/hostname 2>/dev/null || echo gateway)
  host=$(printf '%s' "$host" | tr -c 'A-Za-z0-9_-' '-' | cut -c1-64)
  printf '%s' "${host:-gateway}"
}

do_install() {
  check_platform
  find_node
  GATEWAY_ID=$(gateway_id)
  if [ "$ACTION" = upgrade ] && [ ! -e "$DESTDIR/etc/systemd/system/$UNIT" ]; then
    die "no installed gateway to upgrade ($DESTDIR/etc/systemd/system/$UNIT is missing); install first"
  fi
  install_system_files
  if live; then create_user; fi
  install_config
  install_app
  if ! live; then
    log "files laid out under $DESTDIR; nothing on this machine was changed"
    return
  fi
  if ! { udevadm control --reload-rules && udevadm trigger --subsystem-match=tty; }; then
    log "udev reload failed; the radio names appear after a reboot"
  fi
  if [ "$WITH_MOSQUITTO" = 1 ]; then install_mosquitto; fi
  systemctl daemon-reload
  if [ "$START" = 1 ]; then
    systemctl enable "$UNIT"
    systemctl restart "$UNIT"
    log "running: systemctl status $UNIT; logs: journalctl -u $UNIT -f; health: datalab-gateway status"
  else
    log "installed, not started (--no-start): systemctl enable --now $UNIT"
  fi
}

do_uninstall() {
  if live; then
    systemctl disable --now "$UNIT" 2>/dev/null || true
  fi
  rm -f "$DESTDIR/etc/systemd/system/$UNIT" "$DESTDIR/etc/udev/rules.d/99-datalab-radio.rules" \
    "$DESTDIR/usr/local/bin/datalab-gateway" "$DESTDIR/etc/mosquitto/conf.d/datalab.conf"
  rm -rf "$DESTDIR$APP_DIR" "$DESTDIR$APP_DIR.new" "$DESTDIR$APP_DIR.old"
  if live; then
    systemctl daemon-reload
    udevadm control --reload-rules || true
  fi
  if [ "$PURGE" = 1 ]; then
    rm -rf "$DESTDIR/etc/datalab" "$DESTDIR/var/lib/datalab"
    rm -f "$DESTDIR/usr/lib/sysusers.d/datalab.conf"
    if live && id datalab >/dev/null 2>&1; then userdel datalab || true; fi
    log "removed the gateway, its config and its outbox"
  else
    log "removed the gateway; kept /etc/datalab and /var/lib/datalab (the outbox may hold readings not yet sent; --uninstall --purge removes them)"
  fi
}

case "$ACTION" in
  install | upgrade) do_install ;;
  uninstall) do_uninstall ;;
esac
