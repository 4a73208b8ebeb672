#!/usr/bin/env bash
# Refreshes the email datasets in shared/domain/data from their npm packages
# (see shared/domain/data/README.md). Needs Node (make deps installs one).
set -euo pipefail
cd "$(dirname "$0")/.."
NODE="${NODE:-devstack/node_modules/node/bin/node}"
ROLE="${ROLE_VERSION:-3.1.0}"
FREE="${FREE_VERSION:-1.12.6}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "role-based-email-addresses@$ROLE" "free-email-domains@$FREE" >/dev/null)
for f in "$tmp"/*.tgz; do mkdir -p "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done
"$NODE" -e '
const fs = require("fs");
const [roleDir, freeDir] = process.argv.slice(1);
const write = (file, list) => fs.writeFileSync(file, JSON.stringify([...new Set(list.map(s => s.toLowerCase()))].sort()).replace(/,/g, ",\n") + "\n");
write("shared/domain/data/role_addresses.json", require(roleDir + "/package/src/index.js"));
write("shared/domain/data/free_email_domains.json", JSON.parse(fs.readFileSync(freeDir + "/package/domains.json")));
' "$tmp/role-based-email-addresses-$ROLE" "$tmp/free-email-domains-$FREE"
echo "refreshed; update the versions in shared/domain/data/README.md"
