#!/usr/bin/env bash
# make build: release arm64 binaries of every function, zipped for Lambda,
# and a table of their sizes. cargo-lambda (from .venv) cross-compiles with zig.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
export PATH="$VENV/bin:$PATH"
# Release (LTO) builds get their own target dir: they never block debug/test builds.
export CARGO_TARGET_DIR="${LAMBDA_TARGET_DIR:-$HOME/.cache/puffle-target-lambda}"
source "$ROOT/scripts/lambda-env.sh"
rustup target list --installed | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
cargo lambda build --release --arm64 --output-format zip -p puffle-functions --bins --lambda-dir "$ROOT/target/lambda"
printf '%-10s %12s %12s\n' function "zip bytes" "zip MB"
for d in "$ROOT"/target/lambda/*/; do
  f=$(basename "$d"); z="$d/bootstrap.zip"
  [[ -f "$z" ]] || continue
  s=$(stat -c %s "$z")
  printf '%-10s %12d %12.2f\n' "$f" "$s" "$(echo "$s/1048576" | bc -l)"
done
