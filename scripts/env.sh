# Environment of the local stack. Values already set in the environment win,
# so the same commands can point at other endpoints.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PUFFLE_ROOT="$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/puffle-target}"
# Ports of the local stack (a second checkout can run its own stack beside
# this one by setting other ports).
export PUFFLE_DDB_PORT="${PUFFLE_DDB_PORT:-8000}"
export PUFFLE_SQS_PORT="${PUFFLE_SQS_PORT:-9324}"
export PUFFLE_EVENTS_PORT="${PUFFLE_EVENTS_PORT:-9325}"
export PUFFLE_API_PORT="${PUFFLE_API_PORT:-3000}"
export AWS_ENDPOINT_URL_DYNAMODB="${AWS_ENDPOINT_URL_DYNAMODB:-http://127.0.0.1:$PUFFLE_DDB_PORT}"
export AWS_ENDPOINT_URL_SQS="${AWS_ENDPOINT_URL_SQS:-http://127.0.0.1:$PUFFLE_SQS_PORT}"
export AWS_ENDPOINT_URL_DYNAMODB_STREAMS="${AWS_ENDPOINT_URL_DYNAMODB_STREAMS:-$AWS_ENDPOINT_URL_DYNAMODB}"
export AWS_ENDPOINT_URL_EVENTBRIDGE="${AWS_ENDPOINT_URL_EVENTBRIDGE:-http://127.0.0.1:$PUFFLE_EVENTS_PORT}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-local}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-local}"
export AWS_EC2_METADATA_DISABLED=true
# Paging cursors are signed with this key. On AWS the stack's CursorSecret is
# resolved into it at deploy; locally a fixed dev value does the same job.
export PUFFLE_CURSOR_SECRET="${PUFFLE_CURSOR_SECRET:-puffle-local-cursor-secret}"
# Local queues: a 10 s visibility timeout instead of the template's 360 s, so
# a killed worker's chunk comes back quickly; redrive after 3 receives.
export PUFFLE_LOCAL_VISIBILITY_TIMEOUT="${PUFFLE_LOCAL_VISIBILITY_TIMEOUT:-10}"
export PUFFLE_LOCAL_MAX_RECEIVE_COUNT="${PUFFLE_LOCAL_MAX_RECEIVE_COUNT:-3}"
# The reaper: every 5 s locally (AWS: every minute), a run quiet for 30 s is
# driven forward (AWS: 5 minutes).
export PUFFLE_REAPER_INTERVAL_SECONDS="${PUFFLE_REAPER_INTERVAL_SECONDS:-5}"
export PUFFLE_REAPER_STALE_SECONDS="${PUFFLE_REAPER_STALE_SECONDS:-30}"
# The stream's and the reaper's dispatch of a run its create request may not
# have dispatched waits this long first (AWS: 30 s), so a live request wins.
export PUFFLE_DISPATCH_GRACE_SECONDS="${PUFFLE_DISPATCH_GRACE_SECONDS:-2}"
# Outbound calls to providers: hosts let through the egress guard although
# they resolve to refused addresses (comma-separated host[:port]; empty: none).
# e.g. PUFFLE_EGRESS_ALLOW_HOSTS=127.0.0.1:8089 for a provider stub on this machine.
export PUFFLE_EGRESS_ALLOW_HOSTS="${PUFFLE_EGRESS_ALLOW_HOSTS:-}"
# The key that seals workspace secrets (base64 of 32 bytes). This default is
# for the local stack only; on AWS it comes from the provider secrets.
export PUFFLE_SECRETS_KEY="${PUFFLE_SECRETS_KEY:-bG9jYWwtb25seS1wdWZmbGUtc2VjcmV0cy1rZXkhISE=}"
export PUFFLE_API_URL="${PUFFLE_API_URL:-http://127.0.0.1:$PUFFLE_API_PORT}"
# fauxqs (default, fast) or moto (correct but slow on deep queues).
export SQS_EMULATOR="${SQS_EMULATOR:-fauxqs}"
export RUN_DIR="${RUN_DIR:-$ROOT/.run}"
export NODE22="$ROOT/devstack/node_modules/node/bin/node"
export VENV="$ROOT/.venv"
# Webhook retries: locally the first retries come after ~2 s and ~4–8 s (AWS:
# 30 s doubling to 1 h, for a day); tests shorten them further.
export PUFFLE_WEBHOOK_RETRY_BASE_MS="${PUFFLE_WEBHOOK_RETRY_BASE_MS:-2000}"
export PUFFLE_WEBHOOK_RETRY_MAX_MS="${PUFFLE_WEBHOOK_RETRY_MAX_MS:-60000}"
