#!/usr/bin/env bash
# Ordinal pretraining with the published flags of the original README, unchanged (docs/method.md §4, §9).
# From the environment: CUDA_VISIBLE_DEVICES (default 0), PYTHON (default .venv/bin/python
# when present), DATAPATH, SAVEROOT; extra arguments are passed through (e.g. --wandb_mode offline).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"
# exec: the training process takes the shell's place, so a signal to the recipe (Ctrl-C, a scheduler, tools/run_seeds.py) reaches it
CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES:-0}" exec "$PYTHON" ordinal-pretrain-cluttermnist-scale.py \
                       --savename cluttermnist_pretrain \
                       --digit 4 \
                       --batch_size 192 \
                       --epochs 50 \
                       --lr 0.0019125313967198946 \
                       --margin 60 \
                       --pooling_mode align \
                       --pooling_size 5 \
                       --optimizer SGD \
                       --patience 50 \
                       --step 25 \
                       --datapath "${DATAPATH:-data/Synthesis_mnist}" \
                       --saveroot "${SAVEROOT:-results}" \
                       "$@"
