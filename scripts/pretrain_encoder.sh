#!/usr/bin/env bash
# Successor method, experiment P: pretrain the RoI encoder on 50 images of digit 3 on gray patches,
# with the published flags (docs/method.md §10). Environment: DATA (data folder made by
# `clutter_mnist_scale.py --bg_name patch`), RESULTS (run root), SEED, and any extra flags as arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}
exec "$PYTHON" pretrain_encoder_ordinal.py --datapath "${DATA:-data/corrupted_mnist}" --saveroot "${RESULTS:-results}" --seed "${SEED:-0}" \
    --savename "pretrain_mnist_ae_randpatch${SEED:+_seed$SEED}" --digit 3 --bg_name patch --samples_per_class 10 --sample_size 50 \
    --batch_size 50 "$@"
