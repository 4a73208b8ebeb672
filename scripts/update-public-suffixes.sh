#!/usr/bin/env bash
# Refreshes shared/domain/data/public_suffix_list.dat, Mozilla's public suffix
# list, from the `publicsuffixlist` package on PyPI (which ships the list as
# published at publicsuffix.org, with its VERSION and COMMIT header). Run it,
# then `make unit` and commit the file.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"$ROOT/.venv/bin/pip" download --quiet --no-deps publicsuffixlist -d "$TMP"
(cd "$TMP" && python3 -m zipfile -e ./*.whl unpacked)
cp "$TMP/unpacked/publicsuffixlist/public_suffix_list.dat" "$ROOT/shared/domain/data/public_suffix_list.dat"
grep -m2 -E '^// (VERSION|COMMIT):' "$ROOT/shared/domain/data/public_suffix_list.dat"
