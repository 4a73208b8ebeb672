#!/usr/bin/env bash
# make deploy: build every function with cargo-lambda through SAM and deploy.
# The first run is guided (it writes samconfig.toml); later runs reuse it.
# Needs real AWS credentials in the environment (not the local dummies).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH" SAM_CLI_TELEMETRY=0
unset AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_SQS
rustup target list --installed | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
# rust-cargolambda is a beta build method in SAM.
sam build --beta-features
if [[ -f samconfig.toml ]]; then
  sam deploy
else
  sam deploy --guided --capabilities CAPABILITY_IAM
fi
