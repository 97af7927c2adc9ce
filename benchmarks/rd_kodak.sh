#!/usr/bin/env bash
# Rate-distortion on full-size Kodak (768x512) with the latent-grid codec (`inrkit compress`'s default),
# reduced for a 2-core CPU: the first 8 images, 1,500 steps per image and point (Cool-chic's own presets
# run 10k-100k+ on a GPU), four rate weights lambda (one curve point each: bpp is the mean file size
# over the images), two single-thread workers. About 70 minutes here.
#
# rd.json (CompressAI layout) holds the mean points, every image's file size, PSNR, MS-SSIM, encode
# and decode seconds, Pillow JPEG/WebP on the same images, the published Kodak curves, BD-rates and
# the PSNR gain over JPEG/WebP at 0.25-1 bpp; rd.png plots them. Each finished case is a line of
# latent_cases.jsonl, so an interrupted run resumes where it stopped. On a GPU, pass all 24 images.
set -euo pipefail
DATA=${DATA:-../shared/data/kodak}
OMP_NUM_THREADS=1 .venv/bin/inrkit rd "$DATA"/kodim0{1,2,3,4,5,6,7,8}.png \
  --model latent --lambdas 0.02,0.007,0.0025,0.0008 --steps 1500 --workers 2 \
  --out benchmarks/results/rd_kodak --quiet
