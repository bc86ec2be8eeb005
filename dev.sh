#!/usr/bin/env bash
# Set up the environment (.venv, Python 3.11) if needed, then run a job.
#   bash dev.sh demo   compile and run a small model with a custom op (examples/quickstart.py)
#   bash dev.sh test   lint, type-check, run the test suite and execute the tutorials
set -euo pipefail
cd "$(dirname "$0")"

job="${1:-}"
case "$job" in
  demo) extra="" ;;
  test) extra="[test]" ;;
  *) echo "usage: bash dev.sh demo|test" >&2; exit 2 ;;
esac

python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
stamp=".venv/.installed${extra:+-test}"
if [ ! -x .venv/bin/python ] || [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$python" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extra}"
  touch "$stamp"
fi

if [ "$job" = demo ]; then
  exec .venv/bin/python examples/quickstart.py
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/python -m pytest -n 2 "${@:2}"
