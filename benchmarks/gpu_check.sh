#!/usr/bin/env bash
# One GPU check (under 10 minutes on one GPU, the device's limit per command): the `gpu` tests, fit_many
# against a loop of fit at 64 and 512 members and a profile of its step, one latent-codec encode, and
# last the speed table at 512² for every backbone (the longest: cut at 150 s, its bench store keeps the
# cases it finished). A timed step that fails or runs out of time is reported and the script goes on,
# so it never loses the others.
# Results land in benchmarks/results/gpu/ for the next commit. Run from anywhere:
#   bash benchmarks/gpu_check.sh            # needs CUDA and the project installed (make test does that)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}
OUT=benchmarks/results/gpu
mkdir -p "$OUT"
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())" \
    | tee "$OUT/device.txt"
"$PY" -m pytest -q -m gpu tests/test_gpu.py 2>&1 | tee "$OUT/gpu_tests.txt"
# fit_many vs a loop of `fit`, 32² crops, SIREN 3x32, 300 steps (issue 12's GPU goal: >= 10x at 512 members)
INRKIT_SHARED_DATA=${INRKIT_SHARED_DATA:-../shared/data} timeout 150 "$PY" benchmarks/batched.py speed \
    --device cuda --members 64,512 --loop-members 8 --repeats 1 2>&1 | tee "$OUT/batched.txt" || echo "batched: failed or timed out"
# Where one 512-member step spends its GPU time, should the ratio fall short of 10x.
INRKIT_SHARED_DATA=${INRKIT_SHARED_DATA:-../shared/data} timeout 60 "$PY" benchmarks/batched.py profile \
    --device cuda --members 512 --label _gpu 2>&1 | tee "$OUT/batched_profile.txt" || echo "profile: failed or timed out"
# The latent-grid codec on one full-size Kodak image (1,000 steps): encode seconds on the GPU, PSNR, bpp.
timeout 120 "$PY" -m inrkit compress "${DATA:-../shared/data/kodak}/kodim01.png" --bpp 0.5 --device cuda \
    --out "$OUT/kodim01.inrz" --quiet --json 2>&1 | tee "$OUT/latent_codec.json" || echo "latent codec: failed or timed out"
timeout 150 "$PY" benchmarks/speed.py --device cuda --size 512 --steps 300 --out "$OUT/speed" 2>&1 \
    | tee "$OUT/speed.txt" || echo "speed table: failed or timed out"
