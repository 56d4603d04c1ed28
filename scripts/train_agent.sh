#!/usr/bin/env bash
# Successor method, experiment A: train the agent on patch/3 with the frozen encoder of
# scripts/pretrain_encoder.sh (its best.pth.tar), published flags. Environment as there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}
exec "$PYTHON" train_agent.py --datapath "${DATA:-data/corrupted_mnist}" --saveroot "${RESULTS:-results}" --seed "${SEED:-0}" \
    --savename "agent_mnist_ae_randpatch${SEED:+_seed$SEED}" --pretrained "pretrain_mnist_ae_randpatch${SEED:+_seed$SEED}/best.pth.tar" \
    --img_size 84 --bg_name patch --sample_size 50 --digit 3 --num_act 10 --batch_size 50 --steps_ag 200 "$@"
