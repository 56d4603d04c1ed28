#!/usr/bin/env bash
# Successor method, experiment T2: adapt the patch/3 agent to every target of
# {clean, gaussian_noise, impulse_noise, patch} x {3, 2} with scripts/adapt.sh (flags after the
# command go to each run, e.g. --epochs 50). Environment as scripts/adapt.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
for bg in clean gaussian_noise impulse_noise patch; do
    for digit in 3 2; do
        BG=$bg DIGIT=$digit scripts/adapt.sh "$@"
    done
done
