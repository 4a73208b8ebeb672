#!/usr/bin/env bash
# make test: builds, starts the local stack if it is not up (and stops it
# afterwards, even on failure), runs every test.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

cargo build --workspace --bins --tests

started=0
if ! curl -fsS -o /dev/null "$PUFFLE_API_URL/api/health" 2>/dev/null; then
  scripts/stack.sh up
  started=1
fi
cleanup() { if [[ $started == 1 ]]; then scripts/stack.sh down; fi; }
trap cleanup EXIT

cargo test --workspace --no-fail-fast "$@"

# The template (cfn-lint + sam validate --lint) and a smoke run, as CI does.
scripts/lint-template.sh
scripts/smoke.sh "$PUFFLE_API_URL"
