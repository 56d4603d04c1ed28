#!/usr/bin/env bash
# Successor method, experiments T1/T2: adapt the patch/3 agent of scripts/train_agent.sh to a target
# background and digit (default clutter/2, T1), published flags. The encoder is the one the agent was
# trained with (the original scripts adapted with the pretraining's last.pth.tar instead; pass
# --pretrained .../last.pth.tar for that). Environment: DATA, RESULTS, SEED, BG (clutter), DIGIT (2).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}
BG=${BG:-clutter}
DIGIT=${DIGIT:-2}
exec "$PYTHON" adapt_agent.py --datapath "${DATA:-data/corrupted_mnist}" --saveroot "${RESULTS:-results}" --seed "${SEED:-0}" \
    --savename "adapt_mnist_randpatch2${BG}${DIGIT}${SEED:+_seed$SEED}" \
    --pretrained_agent "agent_mnist_ae_randpatch${SEED:+_seed$SEED}/best.pth.tar" --bg_name "$BG" --digit "$DIGIT" --num_act 10 \
    --batch_size 512 "$@"
