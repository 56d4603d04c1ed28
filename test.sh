#!/usr/bin/env bash
# Sets up .venv (reused when present) and runs the test suite on CPU.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q -r requirements.txt
export WANDB_MODE="${WANDB_MODE:-disabled}" WANDB_SILENT=true
.venv/bin/python -m pytest -q "$@" tests
