#!/usr/bin/env bash
# Sets up .venv (reused when present; pip runs again only when requirements.txt changed) and runs the
# test suite on CPU, in TEST_WORKERS (default 2) pytest-xdist worker processes.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/requirements.installed
if ! cmp -s requirements.txt "$stamp"; then
  .venv/bin/python -m pip install -q -r requirements.txt
  cp requirements.txt "$stamp"
fi
export WANDB_MODE="${WANDB_MODE:-disabled}" WANDB_SILENT=true
.venv/bin/python -m pytest -q -n "${TEST_WORKERS:-2}" "$@" tests
