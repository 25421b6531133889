#!/usr/bin/env bash
# Lint and type-check with the configuration in pyproject.toml ([tool.ruff], [tool.mypy]).
# Not in .ci/run yet (the tree is being restructured); runs every check and exits non-zero if any failed.
#   scripts/lint.sh            # uses ruff/mypy from PATH, else from .venv/bin
set -uo pipefail
cd "$(dirname "$0")/.."
bin() { command -v "$1" 2>/dev/null || { [ -x ".venv/bin/$1" ] && echo ".venv/bin/$1"; } || echo "$1"; }
RUFF=$(bin ruff)
MYPY=$(bin mypy)
status=0
echo "== ruff check src tests"
"$RUFF" check src tests || status=1
echo "== ruff format --check src tests"
"$RUFF" format --check src tests || status=1
echo "== mypy src"
"$MYPY" src || status=1
exit $status
