#!/usr/bin/env bash
# Lint, type-check and run the test suite (hypothesis fuzzing with a bounded example count).
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
ruff check src tests bench
mypy
exec python -m pytest "$@"
