#!/usr/bin/env bash
# make deploy [STAGE=dev] [ALARM_EMAIL=ops@example.com] [STACK=puffle-<stage>]
# Builds every function with SAM (scripts/sam-build.sh: release, arm64) and
# deploys the stack. Needs real AWS credentials in the environment (not the
# local stack's dummies).
#
# No `--guided`: its prompts (one "has no authentication. Is this okay?" per
# HTTP function — tokens are checked inside each function) would stop the
# script. The first deploy passes its settings on the command line and saves
# them (--save-params) in samconfig.toml under the stage's config-env; later
# deploys of that stage reuse them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH" SAM_CLI_TELEMETRY=0
# The local stack's settings must not leak into a real deploy.
unset AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_SQS AWS_ENDPOINT_URL_EVENTBRIDGE PUFFLE_CURSOR_SECRET
if [[ "${AWS_ACCESS_KEY_ID:-}" == local ]]; then
  echo "deploy: AWS_ACCESS_KEY_ID is the local stack's dummy; use real credentials (or AWS_PROFILE)" >&2
  exit 2
fi
STAGE="${STAGE:-dev}"
STACK="${STACK:-puffle-$STAGE}"

scripts/sam-build.sh

if grep -qs "^\[$STAGE\.deploy" samconfig.toml; then
  sam deploy --config-env "$STAGE" --no-fail-on-empty-changeset
else
  overrides=("Stage=$STAGE")
  [[ -n "${ALARM_EMAIL:-}" ]] && overrides+=("AlarmEmail=$ALARM_EMAIL")
  sam deploy --config-env "$STAGE" --save-params \
    --stack-name "$STACK" --resolve-s3 --capabilities CAPABILITY_IAM \
    --parameter-overrides "${overrides[@]}" \
    --no-confirm-changeset --no-fail-on-empty-changeset
fi
sam list stack-outputs --stack-name "$STACK" --output table || true
