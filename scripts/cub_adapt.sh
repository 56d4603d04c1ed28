#!/usr/bin/env bash
# CUB-200-2011, stage 3: adapt the warbler agent of cub_agent.sh to TARGET (wren by default; warbler, gull, oriole,
# sparrow, vireo, kingfisher), on the target list and tested on it (--cub_adapt_on target, as the authors' logged
# runs; pass --cub_adapt_on source for the code as written). Environment: CUB_ROOT, TARGET, RESULTS, SEED, PYTHON;
# extra arguments go to the script (e.g. --support_size 100).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}
SEED=${SEED:-0} TARGET=${TARGET:-wren}
exec "$PYTHON" adapt_agent.py --dataset cub --cub_root "${CUB_ROOT:?set CUB_ROOT to the CUB_200_2011 folder}" \
    --saveroot "${RESULTS:-results}" --seed "$SEED" --savename "adapt_cub_warbler2${TARGET}_seed$SEED" \
    --pretrained_agent "agent_cub_warbler_seed$SEED/best.pth.tar" --pretrained "pretrain_cub_warbler_seed$SEED/last.pth.tar" \
    --bg_name "$TARGET" --backbone vgg16 --dim 1024 --dim_ag 512 --img_size 224 --min_box_side 40 --num_act 14 --batch_size 64 "$@"
