#!/usr/bin/env bash
# Reduced-protocol rate-distortion sweep on Kodak (CPU, ~10 minutes on 2 busy cores).
# Full COIN protocol: 24 images at 768x512, 50k steps. Here: 3 images, 128x128 centre crops,
# 300 steps at lr 1e-3, SIREN at 330/650/1300 parameters (widths 9/13/19, 3 hidden layers), stored at 8/10/12 bits.
# Results: benchmarks/results/rd_kodak/rd.json and rd.png (cases/ caches finished fits).
set -euo pipefail
DATA=${DATA:-../shared/data/kodak}
.venv/bin/inrkit rd "$DATA"/kodim01.png "$DATA"/kodim02.png "$DATA"/kodim03.png \
  --model siren --params 330,650,1300 --bits 8,10,12 --steps 300 --lr 1e-3 --crop 128 \
  --out benchmarks/results/rd_kodak
