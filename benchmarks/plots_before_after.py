"""Draw every plot inrkit makes on tiny inputs into a folder (benchmarks/results/plots/{before,after}).

Run from the repository root with the inrkit to picture on the path:
    .venv/bin/python benchmarks/plots_before_after.py benchmarks/results/plots/after
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import trimesh

from inrkit import FitConfig
from inrkit.bench import run_benchmark
from inrkit.bench.rd import run_rd
from inrkit.runs import run_fit


def main(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp())
    cfg = FitConfig(steps=150, device="cpu", progress=False)
    _, run = run_fit("data/astronaut.png", "siren", out=work / "img", config=cfg, params="20k", checkpoint=False)
    shutil.copy(run / "comparison.png", dest / "comparison.png")
    shutil.copy(run / "curve.png", dest / "curve.png")
    mesh = work / "ball.ply"
    trimesh.creation.icosphere(subdivisions=3, radius=0.6).export(mesh)
    _, run = run_fit(mesh, "siren", kind="occupancy", out=work / "shape", checkpoint=False, params="5k",
                     config=FitConfig(steps=60, device="cpu", progress=False), signal_options={"eval_res": 32})
    shutil.copy(run / "comparison.png", dest / "shape_slices.png")
    bench = run_benchmark({"signals": ["data/astronaut.png", "data/camera64.png"], "models": ["siren", "ffn"],
                           "seeds": [0], "steps": 60, "params": 5000, "device": "cpu", "out": str(work / "bench")},
                          progress=False)
    for name in ("quality_vs_params_image.png", "gallery_image.png"):
        found = next(bench.out.rglob(name), None)
        if found is not None:
            shutil.copy(found, dest / name)
    run_rd(["data/camera64.png"], params=[2000], bits=[8], steps=60, out=work / "rd", device="cpu", progress=False)
    shutil.copy(work / "rd" / "rd.png", dest / "rd_grey.png")
    print("\n".join(str(p) for p in sorted(dest.iterdir())))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
