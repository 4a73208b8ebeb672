#!/usr/bin/env bash
# make test: builds, starts the local stack if it is not up (and stops it
# afterwards, even on failure), runs every test.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

cargo build --workspace --bins --tests

# No test asks a public DNS server: a stack this script starts sends its
# DNS queries to a local port nothing listens on (they fail at once, and
# email_verify says `unknown`); tests that need answers start their own
# DNS server on 127.0.0.1 (tests/src/dns.rs), as the private stacks do.
if [[ -z "${PUFFLE_DNS_SERVERS:-}" ]]; then
  PUFFLE_DNS_SERVERS="127.0.0.1:$(python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  export PUFFLE_DNS_SERVERS
fi

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

# `sam build` as a fresh clone runs it, for one function, in SAM's debug
# mode (minutes; the release build of every function takes a quarter hour):
# proves BuildProperties.Binary, the cargo-lambda build and SAM finding the
# binary. Where Rust's aarch64 standard library is not installed (rustup
# cannot fetch it offline, as on CI's machine) it builds the template's
# x86_64 variant: the same SAM and cargo-lambda path, another --target.
# Skip with PUFFLE_SKIP_SAM_BUILD=1.
if [[ "${PUFFLE_SKIP_SAM_BUILD:-}" != 1 ]]; then
  arch=arm64
  if ! rustup target list --installed | grep -q aarch64-unknown-linux-gnu; then
    arch=x86_64
    echo "sam build: no aarch64 standard library here; building HealthFunction with Architecture=x86_64"
  fi
  sam_dir="$(mktemp -d "${TMPDIR:-/tmp}/puffle-sam-build.XXXXXX")"
  PUFFLE_SAM_ARCH=$arch SAM_BUILD_MODE=debug scripts/sam-build.sh HealthFunction --build-dir "$sam_dir"
  # An ELF executable named bootstrap for the architecture, as Lambda's
  # provided.al2023 wants.
  python3 - "$sam_dir/HealthFunction/bootstrap" "$arch" <<'PY'
import os, struct, sys
path, arch = sys.argv[1], sys.argv[2]
with open(path, "rb") as f:
    head = f.read(20)
assert head[:4] == b"\x7fELF", f"{path} is not an ELF binary"
machine = struct.unpack("<H", head[18:20])[0]
want = {"arm64": 183, "x86_64": 62}[arch]
assert machine == want, f"{path} is not {arch} (e_machine {machine})"
assert os.access(path, os.X_OK), f"{path} is not executable"
print(f"sam build: {path} is an {arch} bootstrap ({os.path.getsize(path)} bytes)")
PY
  rm -rf "$sam_dir"
fi
