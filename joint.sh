#!/usr/bin/env bash
# Joint training with the published flags of the original README, unchanged (docs/method.md §7, §9).
# From the environment: CUDA_VISIBLE_DEVICES (default 0), PYTHON (default .venv/bin/python
# when present), DATAPATH, SAVEROOT; extra arguments are passed through (e.g. --greedy 1).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"
# exec: the training process takes the shell's place, so a signal to the recipe (Ctrl-C, a scheduler, tools/run_seeds.py) reaches it
CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES:-0}" exec "$PYTHON" train-joint.py \
                       --savename cluttermnist_joint \
                       --pretrained cluttermnist_pretrain/best.pth.tar \
                       --lr_ag 0.001 \
                       --lr 0.001 \
                       --pooling_mode align \
                       --pooling_size 5 \
                       --lamb_ent 5. \
                       --seq_len 10 \
                       --margin 60 \
                       --sign 0 \
                       --hidden_size 48 \
                       --freeze 0 \
                       --norm 0 \
                       --num_act 10 \
                       --optimizer_ag Adam \
                       --optimizer SGD \
                       --epochs 250 \
                       --batch_size 512 \
                       --step_ag 80 \
                       --steps 30 70 110 \
                       --datapath "${DATAPATH:-data/Synthesis_mnist}" \
                       --saveroot "${SAVEROOT:-results}" \
                       "$@"
