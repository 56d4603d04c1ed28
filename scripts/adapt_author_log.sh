#!/usr/bin/env bash
# The authors' logged 32-fragment adaptation, reproduced (docs/results.md): a digit-3 patch encoder and
# agent trained with the recipe of their logs, then adapted to digit 2 of the 2021 cluttered data
# (`--bg_name moreclutter`) with the prototype of 4,000 labelled target training images and the target
# normalised as their adaptation loader did (`--target_norm author_log`, mean 0.0334 / std 0.1653).
#   encoder:    5 exemplars per group, --lamb 0.1, lr 1e-3, 150 epochs, LR milestone 80; adapted with its last.pth.tar
#   agent:      --lamb_ent 6, --lr_ag 1e-3, --steps_ag 80, groups of 5, 50 images, 300 epochs (the logged best came
#               after at least 228), its best.pth.tar
#   adaptation: --support_size 4000, every target training image, --lamb_ent 0.5, --steps_ag 80, 100 epochs,
#               patience 50, batch 512
# DATA must hold `clutter_mnist_scale.py --bg_name patch` data of digit 3 and the 2021 data of digit 2
# (`clutter_mnist_scale.py` without --bg_name), in the same folder. Environment: DATA, RESULTS, SEED,
# PYTHON; STAGES (default "encoder agent adapt") picks stages; extra arguments go to every stage.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}
DATA=${DATA:-data/corrupted_mnist} RESULTS=${RESULTS:-results} SEED=${SEED:-0}
TAG=author_log_seed$SEED
COMMON=(--datapath "$DATA" --saveroot "$RESULTS" --seed "$SEED")
for stage in ${STAGES:-encoder agent adapt}; do
  case $stage in
    encoder) "$PYTHON" pretrain_encoder_ordinal.py "${COMMON[@]}" --savename "pretrain_$TAG" --digit 3 --bg_name patch \
               --samples_per_class 5 --sample_size 50 --batch_size 50 --lamb 0.1 --lr 0.001 --epochs 150 --steps 80 "$@" ;;
    agent) "$PYTHON" train_agent.py "${COMMON[@]}" --savename "agent_$TAG" --pretrained "pretrain_$TAG/best.pth.tar" --digit 3 \
             --bg_name patch --samples_per_class 5 --sample_size 50 --batch_size 50 --num_act 10 --lamb_ent 6 --lr_ag 0.001 \
             --steps_ag 80 --epochs 300 "$@" ;;
    adapt) "$PYTHON" adapt_agent.py "${COMMON[@]}" --savename "adapt_$TAG" --pretrained_agent "agent_$TAG/best.pth.tar" \
             --pretrained "pretrain_$TAG/last.pth.tar" --bg_name moreclutter --digit 2 --target_norm author_log \
             --support_size 4000 --lamb_ent 0.5 --steps_ag 80 --epochs 100 --patience 50 --batch_size 512 --num_act 10 --greedy 1 "$@" ;;
    *) echo "unknown stage $stage (use encoder, agent, adapt)" >&2; exit 2 ;;
  esac
done
