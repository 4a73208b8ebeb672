#!/usr/bin/env bash
# `sam build` as a fresh clone runs it (what `make deploy` and CI call):
#   scripts/sam-build.sh                       every function, release (arm64, LTO)
#   scripts/sam-build.sh HealthFunction        one function
#   scripts/sam-build.sh --cached              only what changed since the last build
#   SAM_BUILD_MODE=debug scripts/sam-build.sh HealthFunction   a debug build (CI: fast)
#   PUFFLE_SAM_ARCH=x86_64 scripts/sam-build.sh ...   the template's Architecture=x86_64
#     (for a machine without Rust's aarch64 standard library; never deployed)
# Extra arguments go to `sam build` (e.g. --build-dir DIR).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH" SAM_CLI_TELEMETRY=0
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-${AWS_REGION:-us-east-1}}"
# SAM's own target directory, never the Makefile's (host debug builds for the
# tests): SAM builds arm64 binaries and copies each from the target directory
# `cargo metadata` reports, so cargo and SAM must agree on it, and arm64
# artefacts must not churn the test build cache. It lives outside the clone
# so a fresh clone on the same machine reuses it.
export CARGO_TARGET_DIR="${SAM_CARGO_TARGET_DIR:-$HOME/.cache/puffle-target-sam}"
source "$ROOT/scripts/lambda-env.sh"
command -v cargo-lambda >/dev/null || { echo "sam-build: cargo-lambda missing (make venv)" >&2; exit 2; }
arch="${PUFFLE_SAM_ARCH:-arm64}"
case "$arch" in
  arm64) rustup target list --installed | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu ;;
  x86_64) ;;
  *) echo "sam-build: PUFFLE_SAM_ARCH is arm64 or x86_64, not $arch" >&2; exit 2 ;;
esac

# `sam build --cached` hashes each function's CodeUri (functions/) only, not
# the shared crates the binaries are built from: this digest of every source
# cargo builds them from goes into functions/, so a change anywhere in them
# invalidates the cache, and nothing else does.
find Cargo.toml Cargo.lock shared functions -type f ! -name .sources.sha256 -print0 \
  | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1 > functions/.sources.sha256

# rust-cargolambda is still a beta build method in SAM.
# --parameter-overrides takes every word after it: it goes last.
exec sam build --beta-features "$@" --parameter-overrides "Architecture=$arch"
