#!/usr/bin/env bash
# cfn-lint and `sam validate --lint` on template.yaml. Both apply the SAM
# transform, so the expanded CloudFormation is checked too. Offline: dummy
# credentials, no telemetry.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="$AWS_REGION"
"$VENV/bin/cfn-lint" template.yaml
"$VENV/bin/sam" validate --lint --template template.yaml
echo "template: cfn-lint and sam validate --lint passed"
