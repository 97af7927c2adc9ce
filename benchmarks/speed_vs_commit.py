"""Is any backbone slower than at an earlier commit? Seconds per step, old tree against this one, interleaved.

Issue 13 asks that no backbone get slower at the same settings. This script checks out nothing: give it a
worktree of the earlier commit (`git worktree add /tmp/old 4d700ea`) and it fits every backbone on the same
centre crop of a Kodak image with the same batch size and learning rate in both trees, each fit in its own
process (`PYTHONPATH` pointing at one tree), alternating old and new so load hits both alike. Per fit the
median of the step times after two warm-up steps; per side the median over --repeats.

The batch size is the current recipe's for that crop (full batch where the recipe trains on the whole
signal), passed explicitly to both trees so the comparison is of the engine, not of recipe changes made
since. Architectures come from each tree's `create_model`; the table shows both parameter counts, so a
changed architecture is visible instead of silently compared.

    git worktree add /tmp/old4d 4d700ea
    python benchmarks/speed_vs_commit.py --old /tmp/old4d --size 64 --steps 14 --repeats 3

`--codec` times the latent-grid codec's training step instead (`inrkit compress`'s default), on the
whole image (768x512 for Kodak) at a fixed rate weight, one thread, as `benchmarks/rd_kodak.sh` runs it:

    python benchmarks/speed_vs_commit.py --old /tmp/old5f --codec --image kodim01 --steps 20 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from inrkit import list_models, load_signal
from inrkit.models.registry import MODELS

ROOT = Path(__file__).resolve().parent.parent
KODAK = Path("/work/shared/data/kodak")

# Runs inside either tree: only API that both commits have (create_model, FitConfig, fit, history seconds).
CHILD = """
import json, statistics, sys, torch, inrkit
from inrkit import FitConfig, create_model, fit, load_signal
name, path, size, steps, batch, lr = sys.argv[1:7]
signal = load_signal(path, crop=int(size))
torch.manual_seed(0)
model = create_model(name, signal=signal)
config = FitConfig(steps=int(steps), lr=float(lr), batch_size=int(batch), log_every=1, progress=False)
history = fit(model, signal, config).history
times = [b["seconds"] - a["seconds"] for a, b in zip(history, history[1:])][2:]
print(json.dumps({"s_per_step": statistics.median(times), "params": sum(p.numel() for p in model.parameters()),
                  "package": inrkit.__file__}))
"""

# The codec's training loop in either tree: `train` at a fixed lambda, a few warm-up steps first.
CODEC_CHILD = """
import json, sys, time, torch, inrkit
from inrkit.export.latent import LatentRecipe, train
from inrkit.models.latent_grid import LatentGrid
from inrkit import load_signal
torch.set_num_threads(1)
path, steps = sys.argv[1], int(sys.argv[2])
values = torch.as_tensor(load_signal(path).values).float()
target = values.permute(2, 0, 1)[None]
torch.manual_seed(0)
net = LatentGrid(*values.shape)
train(net, target, 1.0, LatentRecipe(steps=3, lam=0.0025), 0.0)
start = time.perf_counter()
train(net, target, 1.0, LatentRecipe(steps=steps, lam=0.0025), 0.0)
print(json.dumps({"s_per_step": (time.perf_counter() - start) / steps,
                  "params": sum(p.numel() for p in net.parameters()), "package": inrkit.__file__}))
"""


def settings(name: str, image: Path, size: int) -> tuple[int, float]:
    """Batch size and learning rate of the current authors' recipe for this crop."""
    samples = load_signal(image, crop=size).num_samples
    recipe = MODELS[name].recipe("image", samples=samples)
    return min(recipe.batch_size or samples, samples), recipe.lr


def one_fit(tree: Path, name: str, image: Path, size: int, steps: int, batch: int, lr: float) -> dict:
    if name == "latent codec":
        argv = [sys.executable, "-c", CODEC_CHILD, str(image), str(steps)]
    else:
        argv = [sys.executable, "-c", CHILD, name, str(image), str(size), str(steps), str(batch), str(lr)]
    # cwd and PYTHONPATH both point at the tree: the editable install's finder must not win
    out = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=tree,
                         env={**os.environ, "PYTHONPATH": str(tree)})
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(result["package"]).is_relative_to(tree), f"{result['package']} is not from {tree}"
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", type=Path, required=True, help="worktree of the earlier commit")
    p.add_argument("--models", default="*")
    p.add_argument("--image", default="kodim19")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--steps", type=int, default=14)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--codec", action="store_true", help="the latent-grid codec's step on the whole image")
    args = p.parse_args(argv)
    image = KODAK / f"{args.image}.png"
    old_rev = subprocess.run(["git", "-C", str(args.old), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
    names = ["latent codec"] if args.codec else sorted({m for pattern in args.models.split(",")
                                                         for m in list_models(pattern.strip())})
    print("| backbone | batch | params old / new | s/step old | s/step new | new speed / old |")
    print("|---|---:|---|---:|---:|---:|")
    for name in names:
        batch, lr = (0, 0.0) if args.codec else settings(name, image, args.size)
        shown = f"{batch:,}" if batch else "all"
        runs: dict[str, list[dict]] = {"old": [], "new": []}
        try:
            for _ in range(args.repeats):
                for side, tree in (("old", args.old), ("new", ROOT)):
                    runs[side].append(one_fit(tree, name, image, args.size, args.steps, batch, lr))
        except subprocess.CalledProcessError as exc:
            side = "old" if not runs["old"] else "new"
            last = ((exc.stderr or "").strip().splitlines() or ["failed"])[-1][:80]
            print(f"| {name} | {shown} | – | – | – | – ({side} tree: {last}) |")
            continue
        old, new = (statistics.median(r["s_per_step"] for r in runs[s]) for s in ("old", "new"))
        print(f"| {name} | {shown} | {runs['old'][0]['params']:,} / {runs['new'][0]['params']:,} | "
              f"{old:.4f} | {new:.4f} | {old / new:.2f}× |", flush=True)
    if args.codec:
        where = f"{args.image}, whole image, one thread, {args.steps} steps after 3 warm-up steps, mean"
    else:
        where = f"{args.image} centre {args.size}², {args.steps} steps per fit, median of steps 3–{args.steps}"
    print(f"\n{where}; median of {args.repeats} interleaved fits per side; old = {old_rev}.")


if __name__ == "__main__":
    main()
