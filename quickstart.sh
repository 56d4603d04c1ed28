#!/usr/bin/env bash
# The whole pipeline on the CPU in about 10 minutes: set up .venv, generate cluttered MNIST,
# pretrain the embedding net on digit 4, joint-train the agent, evaluate on every digit.
# Short schedules of the published recipe (same architecture and losses; see README "Quickstart").
# Environment: SOURCE (bundled|auto|torchvision, default bundled: the same small data everywhere),
# DATAPATH, SAVEROOT, PRETRAIN_EPOCHS, JOINT_EPOCHS, SEED, WANDB_MODE (default offline),
# AMP (none|bf16, default none: bf16 autocast is faster on CPUs with bf16 units).
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q -r requirements.txt
PY=.venv/bin/python
DATAPATH="${DATAPATH:-data/quickstart}"
SAVEROOT="${SAVEROOT:-results/quickstart}"
SEED="${SEED:-0}"
export WANDB_MODE="${WANDB_MODE:-offline}" WANDB_SILENT=true
COMMON=(--datapath "$DATAPATH" --saveroot "$SAVEROOT" --seed "$SEED" --digit 4 --pooling_mode align --pooling_size 5 --margin 60
        --amp "${AMP:-none}")
AGENT=(--seq_len 10 --hidden_size 48 --num_act 10)

echo "== 1/4 generate cluttered MNIST (source ${SOURCE:-bundled}) -> $DATAPATH"
$PY clutter_mnist_scale.py --source "${SOURCE:-bundled}" --datapath "$DATAPATH" --seed "$SEED"

echo "== 2/4 ordinal pretraining of the embedding net (digit 4)"
# --overwrite 1: a rerun replaces the previous quickstart run (moved to <savename>.old-<timestamp>)
$PY ordinal-pretrain-cluttermnist-scale.py "${COMMON[@]}" --savename pretrain --overwrite 1 \
    --optimizer SGD --lr 0.0019125313967198946 --step 25 --batch_size 64 --epochs "${PRETRAIN_EPOCHS:-50}"
$PY ordinal-pretrain-cluttermnist-scale.py "${COMMON[@]}" --savename pretrain --evaluate 1 --batch_size 64 | tail -n 2

echo "== 3/4 joint training of the agent (embedding net frozen)"
# 400 training images give a batch-512 run one update per epoch, so the short schedule uses
# batch 64, a frozen net in eval mode (the agent trains on the dropout-free embeddings it is
# tested on), per-step rewards (gamma 0) and a smaller agent learning rate.
$PY train-joint.py "${COMMON[@]}" "${AGENT[@]}" --savename joint --overwrite 1 --pretrained pretrain/best.pth.tar \
    --optimizer_ag Adam --lr_ag 0.0003 --lamb_ent 5 --gamma 0 --freeze 1 --frozen_net_mode eval \
    --batch_size 64 --epochs "${JOINT_EPOCHS:-120}" --step_ag 100 --greedy 1

echo "== 4/4 evaluation of the best pair on every digit's test images"
$PY train-joint.py "${COMMON[@]}" "${AGENT[@]}" --savename joint --evaluate 1 --greedy 1 \
    --eval_digits 0 1 2 3 4 5 6 7 8 9 --visualize 6 | grep -v "^run folder"
echo "figures and tables: $SAVEROOT/pretrain, $SAVEROOT/joint"
