#!/usr/bin/env bash
# make destroy [STAGE=dev] [STACK=puffle-<stage>]: deletes the stack, and
# says first what it keeps.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH" SAM_CLI_TELEMETRY=0
unset AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_SQS AWS_ENDPOINT_URL_EVENTBRIDGE
STAGE="${STAGE:-dev}"
STACK="${STACK:-puffle-$STAGE}"
cat <<TXT
destroy: deleting stack $STACK. It removes the API, the functions, the queues
(with any messages still in them), alarms, dashboard, cursor secret and the
log groups.
It KEEPS the DynamoDB table (DeletionPolicy: Retain): every workspace, token,
Lead, List, run and ledger entry stays, and so does its cost (storage, PITR).
Delete it yourself when you mean to, after turning deletion protection off:
  aws dynamodb update-table --table-name <TableName> --no-deletion-protection-enabled
  aws dynamodb delete-table --table-name <TableName>
(the TableName output: sam list stack-outputs --stack-name $STACK). A new
deploy of the same stack name creates a new, empty table.
TXT
sam delete --stack-name "$STACK" --no-prompts
