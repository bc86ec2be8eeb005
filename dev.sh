#!/usr/bin/env bash
# Set up the environment (.venv, Python 3.11) if needed, then run a job.
#   bash dev.sh demo   compile a bundled ONNX model with a plugin's custom op, run and time it
#   bash dev.sh test   lint, type-check, run the test suite (tutorials, docs and wheel included)
#   bash dev.sh docs   build the documentation site into build/docs (tutorials executed)
set -euo pipefail
cd "$(dirname "$0")"

job="${1:-}"
case "$job" in
  demo) extra="" ;;
  test|docs) extra="[test]" ;;
  *) echo "usage: bash dev.sh demo|test|docs" >&2; exit 2 ;;
esac

python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
stamp=".venv/.installed${extra:+-test}"
if [ ! -x .venv/bin/python ] || [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$python" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extra}"
  touch "$stamp"
fi

if [ "$job" = demo ]; then
  mkdir -p build
  .venv/bin/tvmext compile examples/models/acme_mlp.onnx --plugin examples/acme_plugin.py \
    --input-shapes "x:[32,64]" -o build/acme_mlp.so
  exec .venv/bin/tvmext run build/acme_mlp.so --print-top 5 --print-time
fi
if [ "$job" = docs ]; then
  exec .venv/bin/python -m sphinx -W --keep-going -b html docs build/docs
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# One worker per core; each test file runs on one worker, so that a file's module-scoped
# fixtures (an exported zoo, a built documentation site) are made once; files start in
# collection order, the longest first (tests/conftest.py).
exec .venv/bin/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder "${@:2}"
