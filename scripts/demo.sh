#!/usr/bin/env bash
# make demo: the CLI end to end on the running local stack (`make up`).
# Creates a workspace, imports samples/leads.csv into a List, runs every
# built-in enrichment with --wait and prints their results as tables.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

cargo build -q -p puffle-cli
PUFFLE="$CARGO_TARGET_DIR/debug/puffle"
unset PUFFLE_TOKEN

if ! curl -fsS -o /dev/null "$PUFFLE_API_URL/api/health" 2>/dev/null; then
  echo "The API at $PUFFLE_API_URL is not answering: start the local stack with \`make up\` first." >&2
  exit 5
fi

# Work files (the rejects file) stay out of the source tree.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/puffle-demo.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
# The value of a string field in one line of JSON (no jq needed); an
# optional prefix picks e.g. the run's id among other ids.
field() { grep -o "\"$1\":\"${2:-}[^\"]*\"" | head -n 1 | cut -d'"' -f4; }

step "A workspace with 100000 credits"
ws_json="$("$PUFFLE" admin workspace create --name demo --credits 100000 | tail -n 1)"
PUFFLE_TOKEN="$(printf '%s' "$ws_json" | field token)"
WORKSPACE_ID="$(printf '%s' "$ws_json" | field workspaceId)"
export PUFFLE_TOKEN
echo "workspace $WORKSPACE_ID"

step "The catalog"
"$PUFFLE" enrichment --format table

step "A List, and samples/leads.csv imported into it"
LIST_ID="$("$PUFFLE" list create --name "Demo leads" --description "samples/leads.csv" | field id list_)"
echo "list $LIST_ID"
"$PUFFLE" lead import samples/leads.csv --list-id "$LIST_ID" --rejects "$WORK/leads.rejects.csv" --format table
echo
echo "Rejected rows (with their reason):"
cut -d, -f1-3,5,13- "$WORK/leads.rejects.csv" | column -s, -t 2>/dev/null || cat "$WORK/leads.rejects.csv"

step "The List"
"$PUFFLE" list --id "$LIST_ID" --format table

# run <enrichment> <scope> [extra create flags...]: runs it with --wait and
# prints the first results as a table.
run() {
  local enrichment="$1" scope="$2"
  shift 2
  step "$enrichment over $scope"
  local status
  status="$("$PUFFLE" enrichment create --enrichment-id "$enrichment" --scope "$scope" \
    --idempotency-key auto --wait --poll-interval 0.5 "$@")"
  local run_id
  run_id="$(printf '%s' "$status" | field id run_)"
  "$PUFFLE" enrichment results --id "$run_id" --limit 8 --format table | grep -v '^(more'
  # A few of the skipped and failed items too, when there are any.
  for s in skipped failed; do
    "$PUFFLE" enrichment results --id "$run_id" --status "$s" --limit 3 --format table | tail -n +2 | grep -v '^(more' || true
  done
}

# Person enrichments read only the people of the mixed List, company
# enrichments only the companies: filtered scopes on type.
run email_domain "filtered:$LIST_ID:type=person"
run name_parse "filtered:$LIST_ID:type=person"
run phone_normalize "filtered:$LIST_ID:type=person" --input '{"defaultCountry":"US"}'
run job_seniority "filtered:$LIST_ID:type=person"
run company_domain "filtered:$LIST_ID:type=company"

step "People with everything the runs wrote"
"$PUFFLE" list lead --id "$LIST_ID" --type person --limit 10 --format table | grep -v '^(more'

step "Credits left"
"$PUFFLE" credits --format table

cat >&2 <<EOF

Try it yourself:
  export PUFFLE_TOKEN=$PUFFLE_TOKEN
  $PUFFLE lead --type company --format table
  $PUFFLE enrichment results --id <runId> --all --format csv > results.csv
EOF
