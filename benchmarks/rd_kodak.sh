#!/usr/bin/env bash
# Rate-distortion on full-size Kodak (768x512), reduced for a shared 2-core CPU. Full COIN protocol:
# 24 images, 50k steps per image. This committed run: kodim01 at full size, SIREN (fast recipe: quarter
# batches, lr 1e-3) at 10k/20k/40k parameters, 300 steps each, stored at 6/8/10 bits (post-training,
# per tensor; `inrkit export --target-bpp` adds QAT). bpp from the .inrz file size; encode time = fit +
# store, decode time = read + render. BD-rates against Pillow JPEG/WebP on the same image and the
# published Kodak curves are in rd.json ("bd_rate_percent"). Each finished fit is recorded in
# results.sqlite and skipped on re-runs; add kodim02.png ... to widen it.
set -euo pipefail
DATA=${DATA:-../shared/data/kodak}
.venv/bin/inrkit rd "$DATA"/kodim01.png \
  --model siren --recipe fast --params 10k,20k,40k --bits 6,8,10 --steps 300 \
  --out benchmarks/results/rd_kodak --quiet
