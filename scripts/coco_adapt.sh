#!/usr/bin/env bash
# COCO 2017, stage 3: adapt the dog agent of coco_agent.sh to TARGET (default cat): support and adaptation images
# from train2017's one-cat images, test on val2017's (the original's command). Environment: COCO_ROOT, TARGET,
# RESULTS, SEED, PYTHON; SOURCE (default dog); SUPPORT labelled target images (default 5); the run is
# adapt_coco_<SOURCE>2<TARGET>_supp<SUPPORT>_seed<SEED>; extra arguments go to the script.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}
SEED=${SEED:-0} SOURCE=${SOURCE:-dog} TARGET=${TARGET:-cat} SUPPORT=${SUPPORT:-5}
exec "$PYTHON" adapt_agent.py --dataset coco --coco_root "${COCO_ROOT:?set COCO_ROOT to the COCO 2017 folder}" \
    --saveroot "${RESULTS:-results}" --seed "$SEED" --savename "adapt_coco_${SOURCE}2${TARGET}_supp${SUPPORT}_seed$SEED" --support_size "$SUPPORT" \
    --pretrained_agent "agent_coco_${SOURCE}_seed$SEED/best.pth.tar" --pretrained "pretrain_coco_${SOURCE}_seed$SEED/last.pth.tar" \
    --sel_cls "$TARGET" --backbone vgg16 --dim 1024 --dim_ag 512 --img_size 224 --min_box_side 40 --batch_size 64 "$@"
