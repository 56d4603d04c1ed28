#!/usr/bin/env bash
# CUB-200-2011, stage 3: adapt the warbler agent of cub_agent.sh to TARGET (wren by default; warbler, gull, oriole,
# sparrow, vireo, kingfisher) with SUPPORT labelled target images (default 5; the logs used 70-200), on the target
# list and tested on it (ADAPT_ON=target, as the authors' logged runs; ADAPT_ON=source: the code as written, which
# adapts on warbler_train15). Environment: CUB_ROOT, TARGET, SUPPORT, ADAPT_ON, RESULTS, SEED, PYTHON; the run is
# adapt_cub_warbler2<TARGET>_supp<SUPPORT>[_onsource]_seed<SEED>; extra arguments go to the script.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}
SEED=${SEED:-0} TARGET=${TARGET:-wren} SUPPORT=${SUPPORT:-5} ADAPT_ON=${ADAPT_ON:-target}
NAME="adapt_cub_warbler2${TARGET}_supp${SUPPORT}$([ "$ADAPT_ON" = target ] || echo "_on$ADAPT_ON")_seed$SEED"
exec "$PYTHON" adapt_agent.py --dataset cub --cub_root "${CUB_ROOT:?set CUB_ROOT to the CUB_200_2011 folder}" \
    --saveroot "${RESULTS:-results}" --seed "$SEED" --savename "$NAME" --support_size "$SUPPORT" --cub_adapt_on "$ADAPT_ON" \
    --pretrained_agent "agent_cub_warbler_seed$SEED/best.pth.tar" --pretrained "pretrain_cub_warbler_seed$SEED/last.pth.tar" \
    --bg_name "$TARGET" --backbone vgg16 --dim 1024 --dim_ag 512 --img_size 224 --min_box_side 40 --batch_size 64 "$@"
