#!/usr/bin/env bash
# CUB-200-2011, stage 2: train the 14-action agent on warbler_train15 with the frozen encoder of cub_pretrain.sh (its
# last checkpoint), test on warbler_val5 (the original's command; docs/method.md §11). Environment: CUB_ROOT,
# RESULTS, SEED, PYTHON; extra arguments go to the script.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}
SEED=${SEED:-0}
exec "$PYTHON" train_agent.py --dataset cub --cub_root "${CUB_ROOT:?set CUB_ROOT to the CUB_200_2011 folder}" \
    --saveroot "${RESULTS:-results}" --seed "$SEED" --savename "agent_cub_warbler_seed$SEED" \
    --pretrained "pretrain_cub_warbler_seed$SEED/last.pth.tar" --dim 1024 --dim_ag 512 --bg_name warbler --backbone vgg16 \
    --img_size 224 --min_box_side 40 --batch_size 50 "$@"
