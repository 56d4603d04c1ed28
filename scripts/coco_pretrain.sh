#!/usr/bin/env bash
# COCO 2017, stage 1: pretrain the VGG16 encoder's head with the ordinal loss on the train2017 images with exactly one
# dog, test on val2017's (the original's command; docs/method.md §11). Environment: COCO_ROOT (annotations/,
# train2017/, val2017/), VGG16_WEIGHTS, RESULTS, SEED, PYTHON; SOURCE (default dog); extra arguments go to the script.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}
SEED=${SEED:-0} SOURCE=${SOURCE:-dog}
exec "$PYTHON" pretrain_encoder_ordinal.py --dataset coco --coco_root "${COCO_ROOT:?set COCO_ROOT to the COCO 2017 folder}" \
    --backbone_weights "${VGG16_WEIGHTS:?set VGG16_WEIGHTS to a VGG16 state dict (or imagenet)}" --saveroot "${RESULTS:-results}" \
    --seed "$SEED" --savename "pretrain_coco_${SOURCE}_seed$SEED" --sel_cls "$SOURCE" --backbone vgg16 --dim 1024 --batch_size 75 \
    --img_size 224 --lamb 1.0 "$@"
