"""Same initial weights, same data: the authors' model and inrkit's trained side by side.

When inrkit's mean PSNR over seeds differs from the authors' code (`authors_cpu.py`), this separates
the implementation from the init draw and the data pipeline: each seed's authors' model is built
with the authors' code, its weights are copied into inrkit's backbone, and both train on the authors'
pipeline (`/work/shared/anchors/run_reference.py`: linspace (x, y) grid, min-max targets) with the
authors' Adam and LambdaLR schedule. A third run trains inrkit's own seeded init on the same data.

    .venv/bin/python benchmarks/twins.py sl2a --steps 300 --seeds 0 1 2 3 4 5
    .venv/bin/python benchmarks/twins.py gauss --steps 50 --seeds 0 1 2 3 4 5

Needs the authors' work trees under $INRKIT_ANCHORS (default /tmp/anchors), as the anchors' README
sets them up; only torch-only files of theirs are imported (SL2A-INR's modules, wire's modules/gauss.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
from pathlib import Path

import torch

from inrkit import create_model
from inrkit.utils import seed_everything

ANCHORS = Path(os.environ.get("INRKIT_ANCHORS", "/tmp/anchors"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared" / "anchors"))
import run_reference as ref  # noqa: E402  (the anchors' pipelines and PSNR)


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sl2a_authors() -> torch.nn.Module:
    sys.path.insert(0, str(ANCHORS / "SL2A-INR"))
    repo = _module(ANCHORS / "SL2A-INR" / "SL2A_INR.py", "SL2A_INR")
    return repo.SL2A(in_features=2, out_features=3, hidden_layers=3, hidden_features=256, deg=256, rank=128,
                     nonlinearity="relu", init_method="xavier_uniform", linear_init_type="kaiming_uniform")


def sl2a_weights(theirs: dict) -> dict:
    """The authors' state dict under inrkit's names (the same tensors, renamed)."""
    ours = {"cheby.coefficients": theirs["net.0.cheby.cheby_coeffs"], "norm.weight": theirs["net.0.norm.weight"],
            "norm.bias": theirs["net.0.norm.bias"], "last.weight": theirs["linear.weight"],
            "last.bias": theirs["linear.bias"]}
    for i in range(3):
        layer = f"net.{i + 1}"
        ours |= {f"fused.{i}.P": theirs[f"{layer}.weight_left"], f"fused.{i}.Q": theirs[f"{layer}.weight_right"],
                 f"fused.{i}.bias": theirs[f"{layer}.bias"]}
    return ours


def gauss_authors() -> torch.nn.Module:
    return _module(ANCHORS / "wire" / "modules" / "gauss.py", "wire_gauss").INR(2, 256, 2, 3, scale=30.0)


# name: (authors' builder, weights renaming, inrkit's backbone and arguments, lr, pipeline, forward of theirs)
TWINS = {
    "sl2a": (sl2a_authors, sl2a_weights, ("sl2a", {}), 1e-3, ref.sl2a_pipeline,
             lambda m, c: m(c[None]).reshape(-1, 3)),
    "gauss": (gauss_authors, dict, ("gauss", {"hidden_features": 256, "hidden_layers": 2, "sigma": 30.0}), 2e-3,
              ref.minmax_pipeline, lambda m, c: m(c)),
}


def train(model: torch.nn.Module, forward, data, lr: float, steps: int, img) -> float:
    """The anchors' loop: full batch, Adam, LambdaLR 0.1^(t / steps); PSNR on x/255."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.1 ** min(t / steps, 1))
    for _ in range(steps):
        loss = ((forward(model, data.coords) - data.target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        return ref.psnr_unit(data.to_unit(forward(model, data.coords)), img)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", choices=sorted(TWINS))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    build, rename, (name, kwargs), lr, pipeline, forward = TWINS[args.model]
    torch.set_num_threads(2)
    img = ref.centre_crop(ref.DEFAULT_IMAGE, args.size)
    data = pipeline(img)
    rows = []
    for seed in args.seeds:
        torch.manual_seed(seed)
        authors = build()
        twin = create_model(name, 2, 3, kind="image", **kwargs)
        twin.load_state_dict(rename(authors.state_dict()))
        theirs, same = train(authors, forward, data, lr, args.steps, img), train(twin, lambda m, c: m(c), data, lr,
                                                                                  args.steps, img)
        seed_everything(seed)
        own = train(create_model(name, 2, 3, kind="image", **kwargs), lambda m, c: m(c), data, lr, args.steps, img)
        rows.append((theirs, same, own))
        print(f"{args.model} seed {seed}: authors {theirs:.2f} dB | inrkit with the authors' init {same:.2f} | "
              f"inrkit with its own init {own:.2f}", flush=True)
    means = [statistics.mean(col) for col in zip(*rows)]
    print(f"{args.model} means over seeds {args.seeds}: authors {means[0]:.2f} | same init {means[1]:.2f} | "
          f"own init {means[2]:.2f} dB ({args.steps} steps, {args.size}²)")


if __name__ == "__main__":
    main()
