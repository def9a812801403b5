#!/bin/sh
# datalab-gateway: the gateway's command line with the service's configuration, e.g.
#   sudo datalab-gateway status     outbox backlog, uplink, quarantine (reads the outbox when the service is down)
#   sudo datalab-gateway ports      serial ports with their stable names
#   datalab-gateway help            every setting
# Installed as /usr/local/bin/datalab-gateway by deploy/pi/install.sh.
if [ -r /etc/datalab/gateway.env ]; then
  set -a
  # shellcheck disable=SC1091
  . /etc/datalab/gateway.env
  set +a
fi
DATALAB_CONFIG=${DATALAB_CONFIG:-/etc/datalab/gateway.json}
DATALAB_DATA_DIR=${DATALAB_DATA_DIR:-/var/lib/datalab}
export DATALAB_CONFIG DATALAB_DATA_DIR
if [ ! -r "$DATALAB_CONFIG" ]; then
  echo "datalab-gateway: cannot read $DATALAB_CONFIG (run with sudo, or join the datalab group)" >&2
  exit 1
fi
exec @NODE@ --max-semi-space-size=1 --max-old-space-size=64 @APP_DIR@/dist/cli.mjs "$@"
