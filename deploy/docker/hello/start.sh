#!/bin/sh
# Run the example with the config tarscli generated: $TARS_CONFIG under `tarscli supervisor`, else generate it here.
set -e
if [ -z "$TARS_CONFIG" ]; then
  TARS_CONFIG=$(tarscli genconf)
fi
cd "${TARS_PATH:-/tars}/app"
exec python3 -m examples.hello.server --config "$TARS_CONFIG"
