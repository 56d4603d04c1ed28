#!/usr/bin/env bash
# CUB-200-2011: the warbler agent adapted to each target in turn (cub_adapt.sh; TARGETS, default all seven lists).
# Environment as cub_adapt.sh; extra arguments go to every run. Tabulate with
#   python tools/adaptation_table.py RESULTS/adapt_cub_warbler2*   (SUPPORT=100 scripts/cub_adapt_grid.sh: the logs' size)
set -euo pipefail
cd "$(dirname "$0")/.."
for target in ${TARGETS:-wren gull oriole sparrow vireo kingfisher warbler}; do
  TARGET=$target scripts/cub_adapt.sh "$@"
done
