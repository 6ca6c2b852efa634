#!/usr/bin/env bash
# Build the bundled demo corpus (structural imitations, made by code), scan it, print the table and
# write demo-report.json.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
exec jieyao demo --dir "$ROOT/demo-corpus" --json "$ROOT/demo-report.json" "$@"
