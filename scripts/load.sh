#!/usr/bin/env bash
# make load: 50 concurrent clients for 60 s on ONE workspace of a private
# local stack (its own DynamoDB Local, fauxqs, API and worker on free
# 127.0.0.1 ports; the shared stack on :3000 is not touched), then an audit
# of credits, run counts, run states and idempotency keys. docs/load.md.
#
#   make load                                  # 50 clients, 60 s
#   LOAD_CLIENTS=10 LOAD_SECONDS=15 make load  # a quick run
#   scripts/load.sh --clients 20 --seconds 30  # flags win over the env
#
# Exit code: 0 audit passed, 1 audit failed, 2 the load could not run.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$PUFFLE_ROOT"
# The private stack runs the debug puffle-local (tests/src/isolated.rs); the
# same targets as `make test`, so both share one feature set (no second SDK build).
cargo build --workspace --bins --tests
exec "$CARGO_TARGET_DIR/debug/puffle-load" "$@"
