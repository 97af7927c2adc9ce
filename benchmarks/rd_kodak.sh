#!/usr/bin/env bash
# Reduced-protocol rate-distortion sweep on Kodak (CPU). Full COIN protocol: 24 images at 768x512,
# 50k steps per image. This committed run: kodim01 only, its 128x128 centre crop, 300 steps at lr 1e-3,
# SIREN at 330/650/1300 parameters (widths 9/13/19, 3 hidden layers), stored at 8/10/12 bits.
# (About 3-4 minutes per fit on 2 CPU cores shared by several jobs.) Add kodim02.png ... to widen it;
# each finished fit is recorded in results.sqlite (the bench store) and skipped on re-runs.
# Results: benchmarks/results/rd_kodak/rd.json and rd.png.
set -euo pipefail
DATA=${DATA:-../shared/data/kodak}
.venv/bin/inrkit rd "$DATA"/kodim01.png \
  --model siren --params 330,650,1300 --bits 8,10,12 --steps 300 --lr 1e-3 --crop 128 \
  --out benchmarks/results/rd_kodak
