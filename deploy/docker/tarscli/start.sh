#!/bin/sh
# The default start script of the tarscli base image (K8STARS's): copy a mounted config volume into bin/,
# generate the config (under `tarscli supervisor` this reuses the supervisor's ports), then exec the server binary
# bin/$TARS_BUILD_SERVER with it.
set -e
: "${TARS_PATH:=/tars}"
if [ -d "$TARS_PATH/vol-conf" ]; then
  TARS_SYNC_DIRECTORY="$TARS_PATH/vol-conf" tarscli syncdir
fi
conf=$(tarscli genconf)
cd "$TARS_PATH"
exec "$TARS_PATH/bin/$TARS_BUILD_SERVER" --config="$conf"
