#!/usr/bin/env bash
# CUB-200-2011, stage 1: pretrain the VGG16 encoder's head with the ordinal loss on warbler_train15, test on
# warbler_val5 (the original's command; docs/method.md §11). Environment: CUB_ROOT (the CUB_200_2011 folder),
# VGG16_WEIGHTS (a VGG16 state dict with torchvision key names, or imagenet), RESULTS, SEED, PYTHON; extra
# arguments go to the script (e.g. --epochs 150).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}
SEED=${SEED:-0}
exec "$PYTHON" pretrain_encoder_ordinal.py --dataset cub --cub_root "${CUB_ROOT:?set CUB_ROOT to the CUB_200_2011 folder}" \
    --backbone_weights "${VGG16_WEIGHTS:?set VGG16_WEIGHTS to a VGG16 state dict (or imagenet)}" --saveroot "${RESULTS:-results}" \
    --seed "$SEED" --savename "pretrain_cub_warbler_seed$SEED" --backbone vgg16 --bg_name warbler --dim 1024 --batch_size 50 \
    --img_size 224 --lamb 1.0 "$@"
