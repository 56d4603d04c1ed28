#!/usr/bin/env bash
# COCO 2017, stage 2: train the 14-action agent on train2017's one-dog images with the frozen encoder of
# coco_pretrain.sh (its last checkpoint), test on val2017's (the original's command). Environment: COCO_ROOT,
# RESULTS, SEED, PYTHON; SOURCE (default dog); extra arguments go to the script.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}
SEED=${SEED:-0} SOURCE=${SOURCE:-dog}
exec "$PYTHON" train_agent.py --dataset coco --coco_root "${COCO_ROOT:?set COCO_ROOT to the COCO 2017 folder}" \
    --saveroot "${RESULTS:-results}" --seed "$SEED" --savename "agent_coco_${SOURCE}_seed$SEED" \
    --pretrained "pretrain_coco_${SOURCE}_seed$SEED/last.pth.tar" --sel_cls "$SOURCE" --backbone vgg16 --dim 1024 --dim_ag 512 \
    --img_size 224 --min_box_side 40 --batch_size 50 "$@"
