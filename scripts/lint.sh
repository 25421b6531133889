#!/usr/bin/env bash
# Lint and type-check with the configuration in pyproject.toml ([tool.ruff], [tool.mypy]).
# The same three checks tests/project/test_lint.py runs inside the suite (so .ci/run runs them too), by hand;
# runs every check and exits non-zero if any failed.
#   scripts/lint.sh            # uses ruff/mypy from PATH, else from .venv/bin
set -uo pipefail
cd "$(dirname "$0")/.."
bin() { command -v "$1" 2>/dev/null || { [ -x ".venv/bin/$1" ] && echo ".venv/bin/$1"; } || echo "$1"; }
RUFF=$(bin ruff)
MYPY=$(bin mypy)
status=0
echo "== ruff check src tests scripts"
"$RUFF" check src tests scripts || status=1
echo "== ruff format --check src tests scripts"
"$RUFF" format --check src tests scripts || status=1
echo "== mypy src"
"$MYPY" src || status=1
exit $status
