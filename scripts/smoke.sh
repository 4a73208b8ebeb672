#!/usr/bin/env bash
# make smoke [URL=… TOKEN=…]: a short end-to-end check against any stage —
# upsert Leads, build a List, create a run, poll it to completion, read its
# items, cancel a second run. Without TOKEN (local only) it makes a workspace.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
URL="${1:-http://127.0.0.1:3000}"; URL="${URL%/}"
TOKEN="${2:-}"
if [[ -z "$TOKEN" ]]; then
  TOKEN=$("$CARGO_TARGET_DIR/debug/puffle" admin workspace create --name smoke --credits 1000 2>/dev/null | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
fi
j() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {'d': d}))" "$1"; }
call() { # method path [body] → body on stdout, fails on unexpected status
  local method=$1 path=$2 body=${3:-} out status
  out=$(mktemp)
  status=$(curl -sS -o "$out" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' ${body:+-d "$body"} "$URL$path")
  if [[ "$status" -ge 500 || "$status" == 401 ]]; then echo "smoke: $method $path → $status $(cat "$out")" >&2; exit 1; fi
  cat "$out"; rm -f "$out"
}
step() { printf 'smoke: %-44s' "$1"; }

step "health"; curl -fsS "$URL/api/health" | j 'd["status"]'
tag="smoke$(date +%s%N)"
step "upsert 3 leads"
leads=$(call POST /api/leads "{\"leads\":[
  {\"type\":\"person\",\"name\":{\"full\":\"Ada One\"},\"title\":\"CTO\",\"contacts\":[{\"type\":\"email\",\"value\":\"ada@$tag.example.com\"}]},
  {\"type\":\"person\",\"name\":{\"full\":\"Bo Two\"},\"title\":\"Engineer\",\"contacts\":[{\"type\":\"email\",\"value\":\"bo@gmail.com\"}]},
  {\"type\":\"person\",\"name\":{\"full\":\"Cy Three\"},\"title\":\"VP Sales\",\"contacts\":[{\"type\":\"email\",\"value\":\"cy@$tag.example.com\"}]}]}")
ids=$(echo "$leads" | j '",".join("\"%s\"" % l["id"] for l in d["leads"])'); echo "created=$(echo "$leads" | j 'd["created"]')"
step "create list"; list=$(call POST /api/lists "{\"name\":\"$tag\",\"leadIds\":[$ids]}" | j 'd["list"]["id"]'); echo "$list"
step "create run (email_domain over the list)"
run=$(call POST /api/enrichment "{\"enrichmentId\":\"email_domain\",\"scope\":{\"type\":\"list\",\"listId\":\"$list\"},\"input\":{},\"idempotencyKey\":\"$tag\"}")
rid=$(echo "$run" | j 'd["runId"]'); echo "$rid"
step "repeat with the same key"; echo "$(call POST /api/enrichment "{\"enrichmentId\":\"email_domain\",\"scope\":{\"type\":\"list\",\"listId\":\"$list\"},\"input\":{},\"idempotencyKey\":\"$tag\"}" | j 'd["reusedExistingRun"]')"
step "poll until terminal"
for i in $(seq 1 120); do
  st=$(call GET "/api/enrichment/$rid" | j 'd["run"]["status"]')
  [[ "$st" == completed || "$st" == failed || "$st" == cancelled ]] && break
  sleep 1
done
echo "$st"; [[ "$st" == completed ]] || { echo "smoke: run ended $st" >&2; exit 1; }
step "items"
items=$(call GET "/api/enrichment/$rid/items?limit=10")
echo "$items" | j '" ".join("%s:%s" % (i["status"], (i["result"] or {}).get("domain")) for i in d["items"])'
[[ $(echo "$items" | j 'len([i for i in d["items"] if i["status"]=="completed"])') == 3 ]] || { echo "smoke: expected 3 completed items" >&2; exit 1; }
step "cancel a second run"
run2=$(call POST /api/enrichment "{\"enrichmentId\":\"job_seniority\",\"scope\":{\"type\":\"list\",\"listId\":\"$list\"},\"input\":{}}" | j 'd["runId"]')
cancel=$(call POST "/api/enrichment/$run2/cancel")
echo "$cancel" | j 'd.get("run", {}).get("status") or d.get("reason")'
step "cancel again → 409"; echo "$(call POST "/api/enrichment/$run2/cancel" | j 'd["code"]')"
echo "smoke: ok ($URL)"
