#!/usr/bin/env bash
# Install, upgrade or remove the Wireless Sensor DataLab gateway on Raspberry Pi OS (Debian
# bookworm or later, 32-bit armhf or 64-bit arm64; any other Debian works the same way).
#
#   sudo deploy/pi/install.sh                     install and start the service
#   sudo deploy/pi/install.sh --with-mosquitto    also a local Mosquitto broker with persistence
#   sudo deploy/pi/install.sh --upgrade           new code, same config and outbox, restart
#   sudo ./install.sh --from datalab-gateway-<version>-linux-arm64.tar.gz
#                                                 install a release: no compiler, no Node.js needed
#   sudo deploy/pi/install.sh --rollback          back to the release before the last upgrade
#   sudo deploy/pi/install.sh --uninstall         remove; keeps /etc/datalab and the outbox
#   sudo deploy/pi/install.sh --uninstall --purge remove those too
#   DESTDIR=/tmp/root deploy/pi/install.sh        lay the files out under a scratch root only
#
# What it installs, from this checkout: the gateway with its production dependencies laid
# out by `pnpm deploy` and its code bundled into one file (dist/cli.mjs), built on this machine
# so that the native SQLite module matches its CPU (armv7l or aarch64). --prebuilt PATH takes
# such a folder (or a .tar.gz of one) built elsewhere on the same architecture instead.
# --from takes a release (`pnpm release gateway --arch arm64`), which carries its own Node.js.
# Each install is a folder under $APP_DIR/releases; $APP_DIR/current links the running one and
# $APP_DIR/previous the one before, which --rollback returns to. See docs/raspberry-pi.md.
set -euo pipefail

SRC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PI_DIR="$SRC_ROOT/deploy/pi"
DESTDIR=${DESTDIR:-}
APP_DIR=${DATALAB_APP_DIR:-/opt/datalab/gateway}
UNIT=datalab-gateway.service
ACTION=install
WITH_MOSQUITTO=0
PREBUILT=""
FROM=""
START=1
PURGE=0

log() { printf '[datalab] %s\n' "$*" >&2; }
die() {
  printf '[datalab] error: %s\n' "$*" >&2
  exit 1
}

usage() {
  sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  cat <<'EOF'
Options:
  --upgrade           replace the code, keep config and data, restart the service
  --uninstall         stop and remove the service and code (config and outbox stay)
  --purge             with --uninstall: also remove /etc/datalab, /var/lib/datalab, the user
  --with-mosquitto    install Mosquitto with a DataLab config (loopback, persistence)
  --prebuilt PATH     install this built gateway folder or .tar.gz instead of building
  --from TARBALL      install a release tarball (its own Node.js; checked against TARBALL.sha256)
  --rollback          make the previous release current again and restart
  --no-start          install but do not enable or start the service
  -h, --help          this text
Environment: DESTDIR (scratch root), DATALAB_APP_DIR (default /opt/datalab/gateway),
DATALAB_NODE (node binary to run the service with; default: the one on PATH, or the
release's own with --from).
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --upgrade) ACTION=upgrade ;;
    --uninstall) ACTION=uninstall ;;
    --rollback) ACTION=rollback ;;
    --purge) PURGE=1 ;;
    --with-mosquitto) WITH_MOSQUITTO=1 ;;
    --prebuilt)
      [ $# -ge 2 ] || die "--prebuilt needs a path"
      PREBUILT=$2
      shift
      ;;
    --from)
      [ $# -ge 2 ] || die "--from needs a release tarball"
      FROM=$2
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
[ -z "$FROM" ] || [ -z "$PREBUILT" ] || die "--from and --prebuilt do not go together"

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
  if [ -n "$FROM" ]; then
    unpack_release "$out"
    return
  elif [ -n "$PREBUILT" ]; then
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
  # A release names the outbox format it reads; a build from a checkout asks its own code, so a
  # later --rollback knows whether the outbox must be converted first.
  local format
  if [ ! -f "$out/OUTBOX_FORMAT" ] && format=$(cd "$out" && "$NODE" dist/cli.mjs outbox format 2>/dev/null); then
    printf '%s\n' "$format" >"$out/OUTBOX_FORMAT"
  fi
}

# The machine's name for a release's architecture (RELEASE's "uname").
release_field() {
  sed -n "s/^ *\"$2\": *\"\([^\"]*\)\".*/\1/p" "$1/RELEASE"
}

# A release tarball, checked against its .sha256 beside it, unpacked into $1; it brings its own
# Node.js, so nothing on this machine needs to be compiled or installed.
unpack_release() {
  local out=$1 expected actual machine
  [ -f "$FROM" ] || die "--from $FROM: no such file"
  if [ -f "$FROM.sha256" ]; then
    expected=$(cut -d' ' -f1 <"$FROM.sha256")
    actual=$(sha256sum "$FROM" | cut -d' ' -f1)
    [ "$expected" = "$actual" ] || die "$FROM does not match $FROM.sha256: a damaged or altered download"
    log "checksum of $(basename "$FROM") matches"
  else
    log "no $FROM.sha256 beside the tarball: its checksum is not checked"
  fi
  mkdir -p "$out"
  tar -xzf "$FROM" -C "$out" --strip-components=1 --no-same-owner
  if [ ! -f "$out/RELEASE" ] || [ ! -x "$out/bin/node" ] || [ ! -f "$out/dist/cli.mjs" ]; then
    die "$FROM is not a gateway release (no RELEASE, bin/node, dist/cli.mjs)"
  fi
  machine=$(release_field "$out" uname)
  if [ "$machine" = "$(uname -m)" ]; then
    (cd "$out" && ./bin/node -e "new (require('better-sqlite3'))(':memory:').close()") ||
      die "the release's Node.js or SQLite module does not run on this machine"
  elif live; then
    die "$FROM is built for $machine, this machine is $(uname -m)"
  else
    log "a release for $machine, laid out on $(uname -m): not run here"
  fi
  log "release $(release_field "$out" version) for $machine with Node.js $(release_field "$out" node)"
}

# Point the link $2 at $1 in one rename, so it never dangles.
relink() {
  ln -sfn "$1" "$2.tmp"
  mv -T "$2.tmp" "$2"
}

# An install made before releases: its folder becomes the first release.
adopt_flat_install() {
  local base=$DESTDIR$APP_DIR
  if [ -f "$base/dist/cli.mjs" ] && [ ! -L "$base/current" ]; then
    mv "$base" "$base.flat"
    mkdir -p "$base/releases"
    mv "$base.flat" "$base/releases/flat"
    relink releases/flat "$base/current"
  fi
}

# Build (or unpack) the new release beside the running one, then switch `current` to it in one
# rename. The release it replaces stays as `previous` for --rollback; older ones go.
install_app() {
  local base=$DESTDIR$APP_DIR stage id old keep dir
  adopt_flat_install
  mkdir -p "$base/releases"
  stage=$base/releases/.new
  rm -rf "$stage"
  build_app "$stage"
  id=$(date -u +%Y%m%dT%H%M%SZ)
  if [ -f "$stage/RELEASE" ]; then id="$id-$(release_field "$stage" version)"; fi
  while [ -e "$base/releases/$id" ]; do id="$id-1"; done
  mv "$stage" "$base/releases/$id"
  old=$(readlink "$base/current" || true)
  relink "releases/$id" "$base/current"
  if [ -n "$old" ]; then relink "$old" "$base/previous"; fi
  keep=" releases/$id $old "
  for dir in "$base"/releases/*; do
    case "$keep" in *" releases/$(basename "$dir") "*) ;; *) rm -rf "$dir" ;; esac
  done
  log "gateway installed in $base/releases/$id (current${old:+; previous: $old})"
}

# The node that runs the release in $1: its own, else the one the installed unit names.
release_node() {
  local node
  if [ -x "$1/bin/node" ]; then
    printf '%s' "$1/bin/node"
    return
  fi
  node=$(sed -n 's/^ExecStart=\([^ ]*\) .*/\1/p' "$DESTDIR/etc/systemd/system/$UNIT" 2>/dev/null || true)
  if [ -z "$node" ] || [ ! -x "$node" ]; then node=${DATALAB_NODE:-$(command -v node || true)}; fi
  printf '%s' "$node"
}

# The outbox format the release in $1 reads: its OUTBOX_FORMAT file, else what its code says;
# a release from before formats were named reads format 3.
release_format() {
  local format="" node
  if [ -f "$1/OUTBOX_FORMAT" ]; then
    format=$(head -n 1 "$1/OUTBOX_FORMAT")
  else
    node=$(release_node "$1")
    if [ -n "$node" ]; then format=$(cd "$1" && "$node" dist/cli.mjs outbox format 2>/dev/null) || format=""; fi
  fi
  case "$format" in
    '' | *[!0-9]*) echo 3 ;;
    *) echo "$format" ;;
  esac
}

# Where the service keeps its outbox: the unit's DATALAB_DATA_DIR, unless gateway.env sets another.
service_data_dir() {
  local dir
  dir=$(sed -n 's/^[[:space:]]*DATALAB_DATA_DIR=//p' "$DESTDIR/etc/datalab/gateway.env" 2>/dev/null | tail -n 1 || true)
  dir=${dir//\"/}
  dir=${dir//\'/}
  printf '%s' "${dir:-/var/lib/datalab}"
}

# Before going back to a release that reads an older outbox format, the running release (which
# knows both) converts the file, with the service stopped; on failure nothing is switched.
downgrade_outbox() {
  local base=$1 cur=$2 to=$3 data node out was_active=0
  data=$DESTDIR$(service_data_dir)
  if [ ! -e "$data/outbox.db" ]; then
    log "no outbox at $data: nothing to convert"
    return
  fi
  node=$(release_node "$base/$cur")
  [ -n "$node" ] || die "no node to run the current release's outbox downgrade with (set DATALAB_NODE)"
  if live && systemctl is-active --quiet "$UNIT"; then
    log "stopping $UNIT to convert the outbox"
    systemctl stop "$UNIT"
    was_active=1
  fi
  # As the service runs it: its user owns the file, and nothing from this shell's environment.
  local cmd=(env -i "PATH=/usr/sbin:/usr/bin:/sbin:/bin" "DATALAB_DATA_DIR=$data" NODE_ENV=production
    "$node" "$base/$cur/dist/cli.mjs" outbox downgrade --to "$to")
  if live; then cmd=(runuser -u datalab -- "${cmd[@]}"); fi
  if ! out=$(cd "$base/$cur" && "${cmd[@]}" 2>&1); then
    if [ "$was_active" = 1 ]; then systemctl start "$UNIT" || true; fi
    die "not rolled back (still on $cur): the outbox could not be converted to format $to: $out"
  fi
  log "$out"
}

do_rollback() {
  local base=$DESTDIR$APP_DIR cur prev
  prev=$(readlink "$base/previous" || true)
  if [ -z "$prev" ] || [ ! -d "$base/$prev" ]; then die "no previous release to roll back to in $base"; fi
  cur=$(readlink "$base/current")
  # The unit names the node of the install that wrote it: a release's own, or the machine's.
  local own_prev=0 own_cur=0
  if [ -x "$base/$prev/bin/node" ]; then own_prev=1; fi
  if [ -x "$base/$cur/bin/node" ]; then own_cur=1; fi
  if [ "$own_prev" != "$own_cur" ]; then
    die "the previous release was installed the other way (from a release / from a checkout): install it again with install.sh instead"
  fi
  local prev_format cur_format outbox="the outbox is untouched"
  prev_format=$(release_format "$base/$prev")
  cur_format=$(release_format "$base/$cur")
  if [ "$prev_format" -lt "$cur_format" ]; then
    log "the previous release reads outbox format $prev_format, the current one $cur_format: converting the outbox"
    downgrade_outbox "$base" "$cur" "$prev_format"
    outbox="the outbox is in format $prev_format"
  fi
  relink "$prev" "$base/current"
  relink "$cur" "$base/previous"
  log "rolled back: current is $prev, previous is $cur (the config is untouched, $outbox)"
  if live; then
    systemctl restart "$UNIT"
    log "restarted $UNIT"
  fi
}

# The unit and the wrapper run whatever `current` links, so a switch of releases is one rename.
substitute() {
  sed -e "s|@NODE@|$NODE|g" -e "s|@APP_DIR@|$APP_DIR/current|g" -e "s|@GATEWAY_ID@|$GATEWAY_ID|g" "$1"
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
  if [ -n "$FROM" ]; then
    # The release's own Node.js, through the link, so a rollback switches it with the code.
    NODE=${DATALAB_NODE:-$APP_DIR/current/bin/node}
  else
    find_node
  fi
  GATEWAY_ID=$(gateway_id)
  if [ "$ACTION" = upgrade ] && [ ! -e "$DESTDIR/etc/systemd/system/$UNIT" ]; then
    die "no installed gateway to upgrade ($DESTDIR/etc/systemd/system/$UNIT is missing); install first"
  fi
  install_app
  # A release carries the unit, rules and examples that go with its code.
  if [ -n "$FROM" ]; then PI_DIR=$DESTDIR$APP_DIR/current/deploy/pi; fi
  install_system_files
  if live; then create_user; fi
  install_config
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
  rollback) do_rollback ;;
  uninstall) do_uninstall ;;
esac
