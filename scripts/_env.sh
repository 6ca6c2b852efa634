# Sourced by demo.sh and test.sh: create or reuse .venv and install jieyao into it, idempotently
# (reinstalls only when pyproject.toml changed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY=""
for cand in python3.11 python3.12 python3.13 python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    PY="$cand"; break
  fi
done
if [ -z "$PY" ]; then echo "jieyao needs Python 3.11 or newer" >&2; exit 2; fi
VENV="${JIEYAO_VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.jieyao-installed"
WANT="$(cat pyproject.toml | sha256sum | cut -d' ' -f1)-${JIEYAO_EXTRAS:-dev,yara,media,video,banks,service,lineage,ocr,spark}"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e ".[${JIEYAO_EXTRAS:-dev,yara,media,video,banks,service,lineage,ocr,spark}]"
  echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
