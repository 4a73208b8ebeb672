#!/usr/bin/env bash
# make invoke FN=create EVENT=events/create.json
# Runs a function's real binary under cargo-lambda's Lambda runtime API
# emulator (`cargo lambda watch --only-lambda-apis`) against the local stack,
# sends it the event with `cargo lambda invoke`, prints the response, and
# stops both processes. The shipped events name the fixtures of
# `puffle admin seed-events`; `${NAME}` placeholders in an event of your own
# are replaced from the environment.
#   BIN_DIR       the binaries (default: the host's debug build)
#   ENV_FILE      a `sam local --env-vars` file (events/env.json): the function
#                 gets its Parameters instead of the SDK endpoint variables, as
#                 under `sam local invoke` (ports follow PUFFLE_*_PORT)
#   FUNCTION_LOG  keep the function's own output (its log lines) in this file
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
FN="${1:?usage: invoke.sh FUNCTION EVENT_FILE}"
EVENT="${2:-$ROOT/events/$FN.json}"
BIN_DIR="${BIN_DIR:-$CARGO_TARGET_DIR/debug}"
PORT="${INVOKE_PORT:-$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')}"
export PATH="$VENV/bin:$PATH"
[[ -x "$BIN_DIR/$FN" ]] || { echo "invoke: no binary $BIN_DIR/$FN (make build-debug)" >&2; exit 2; }
command -v cargo-lambda >/dev/null || { echo "invoke: cargo-lambda missing (make venv)" >&2; exit 2; }

tmp="$(mktemp -d)"
python3 - "$EVENT" "$tmp/event.json" <<'PY'
import os, re, sys
text = open(sys.argv[1]).read()
text = re.sub(r"\$\{([A-Z_]+)\}", lambda m: os.environ.get(m.group(1), m.group(0)), text)
open(sys.argv[2], "w").write(text)
PY

if [[ -n "${ENV_FILE:-}" ]]; then
  # What sam local would set: the file's variables, and no AWS_ENDPOINT_URL_*.
  unset AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_SQS AWS_ENDPOINT_URL_EVENTBRIDGE
  while IFS= read -r line; do export "$line"; done < <(python3 - "$ENV_FILE" <<'PY'
import json, os, sys
params = json.load(open(sys.argv[1])).get("Parameters", {})
ports = {":8000": ":" + os.environ["PUFFLE_DDB_PORT"], ":9324": ":" + os.environ["PUFFLE_SQS_PORT"], ":9325": ":" + os.environ["PUFFLE_EVENTS_PORT"]}
for k, v in params.items():
    for a, b in ports.items():
        v = v.replace(a, b)
    print(f"{k}={v}")
PY
)
fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

cargo lambda watch --only-lambda-apis -A 127.0.0.1 -P "$PORT" >"$tmp/watch.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

# `_` is the emulator's default function name.
AWS_LAMBDA_FUNCTION_NAME=_ AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256 \
AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$PORT/.rt" "$BIN_DIR/$FN" >"$tmp/function.log" 2>&1 &
pids+=($!)

if ! timeout 60 cargo lambda invoke _ -A 127.0.0.1 -P "$PORT" --data-file "$tmp/event.json"; then
  echo "invoke: $FN failed; function log:" >&2
  cat "$tmp/function.log" >&2
  exit 1
fi
echo
if [[ -n "${FUNCTION_LOG:-}" ]]; then
  # Lines are written (stdout is line-buffered) before the function answers.
  cp "$tmp/function.log" "$FUNCTION_LOG"
fi
