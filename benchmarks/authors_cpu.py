"""inrkit's backbones against the authors' own code, on the settings of `reference/authors-code-on-cpu.md`.

Each row fits a centre crop of Kodak's kodim23 with the same width, depth, learning rate, schedule,
target range and number of steps as the authors' script did in that note (seed 0, 2 threads,
full batch except FKAN at 256²), and records PSNR (output clamped to [0, 1], peak 1) and the median
seconds per step after 5 warm-up steps. The authors' figures sit beside ours in
`benchmarks/results/authors_cpu.md`; finished cases are kept in `authors_cpu.json` and skipped on
re-runs (use --force to redo them). Backbones not (yet) registered are skipped with a note.

Usage:
    .venv/bin/python benchmarks/authors_cpu.py --quick            # 64² only, 100 steps
    .venv/bin/python benchmarks/authors_cpu.py --sizes 64         # the authors' 64² column (300 steps)
    .venv/bin/python benchmarks/authors_cpu.py --sizes 64 256     # both columns (256² takes ~1 s/step)
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from inrkit import FitConfig, create_model, fit, list_models, load_signal
from inrkit.models import get_entry
from inrkit.utils import count_params

HERE = Path(__file__).resolve().parent
IMAGE = HERE.parents[1] / "shared" / "data" / "kodak" / "kodim23.png"
RESULTS = HERE / "results"
WARMUP = 5


@dataclass(frozen=True)
class Row:
    """One row of the authors' table: how they ran it and what they measured."""

    key: str
    label: str
    model: str
    kwargs: dict
    lr: float
    decay: float
    minmax: bool  # targets min-max normalised per crop (wire repo, SL²A, FKAN) rather than x / 255
    params: int
    psnr: dict  # size -> authors' PSNR
    steps: dict  # size -> authors' steps
    seconds: dict  # size -> authors' s/step
    target_range: tuple | None = None  # override the backbone's own (the wire repo fits SIREN in [0, 1])
    batch: dict = field(default_factory=dict)  # size -> points per step (None: full batch)


WIRE_REPO = dict(lr=5e-3, decay=0.1, minmax=True)
ROWS = [
    Row("siren", "SIREN (siren repo)", "siren", dict(hidden_features=256, hidden_layers=3), 1e-4, 1.0, False,
        198_915, {64: 47.70, 256: 31.00}, {64: 300, 256: 200}, {64: 0.034, 256: 0.939}),
    Row("wire", "WIRE (wire repo)", "wire",
        dict(hidden_features=256, hidden_layers=2, first_omega_0=20.0, hidden_omega_0=20.0, sigma=30.0),
        **WIRE_REPO, params=133_403, psnr={64: 66.69, 256: 21.67}, steps={64: 300, 256: 40},
        seconds={64: 0.669, 256: 13.136}),
    Row("siren-wire", "SIREN as the wire repo runs it", "siren",
        dict(hidden_features=256, hidden_layers=2, first_omega_0=20.0, hidden_omega_0=20.0), **WIRE_REPO,
        params=133_123, psnr={64: 82.62, 256: 22.12}, steps={64: 300, 256: 200}, seconds={64: 0.025, 256: 0.711},
        target_range=(0.0, 1.0)),
    Row("gauss", "Gauss (wire repo)", "gauss", dict(hidden_features=256, hidden_layers=2, sigma=30.0), **WIRE_REPO,
        params=133_123, psnr={64: 57.17, 256: 21.90}, steps={64: 300, 256: 50}, seconds={64: 0.315, 256: 5.976}),
    Row("relu_pe", "ReLU+PE (wire repo)", "relu_pe", dict(hidden_features=256, hidden_layers=2), **WIRE_REPO,
        params=137_219, psnr={64: 40.84, 256: 23.50}, steps={64: 300, 256: 200}, seconds={64: 0.023, 256: 0.521}),
    Row("sl2a", "SL²A", "sl2a", dict(hidden_features=256, hidden_layers=3, degree=256, rank=128), 1e-3, 0.1, True,
        330_243, {64: 50.31, 256: 29.48}, {64: 300, 256: 200}, {64: 0.060, 256: 1.683}),
    Row("finer", "FINER (SL²A repo)", "finer", dict(hidden_features=256, hidden_layers=3, first_bias_scale=20.0),
        1e-4, 0.1, True, 198_915, {64: 47.19, 256: 19.06}, {64: 300, 256: 200}, {64: 0.049, 256: 1.962}),
    Row("fkan", "FKAN (notebook)", "fkan", {}, 1e-4, 0.1, True, 436_367, {64: 35.86, 256: 13.82},
        {64: 300, 256: 200}, {64: 2.138, 256: 2.060}, batch={256: 4096}),
    Row("spder", "SPDER (spder repo)", "spder", dict(hidden_features=256, hidden_layers=5), 1e-4, 1.0, False,
        330_499, {64: 82.50, 256: 38.41}, {64: 300, 256: 100}, {64: 0.103, 256: 6.752}),
]


def crop(size: int, minmax: bool):
    """The centre size x size crop of kodim23 as a Signal in [0, 1] (x / 255, or min-max per crop)."""
    img = iio.imread(IMAGE).astype(np.float32)
    top, left = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    img = img[top:top + size, left:left + size]
    img = (img - img.min()) / (img.max() - img.min()) if minmax else img / 255.0
    return load_signal(img)


def _accepted(model: str, kwargs: dict) -> tuple[dict, list[str]]:
    """The kwargs the backbone's constructor accepts, and a note for each it does not."""
    params = inspect.signature(get_entry(model).cls).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return kwargs, []
    kept = {k: v for k, v in kwargs.items() if k in params}
    return kept, [f"`{k}` not an argument" for k in kwargs if k not in params]


def siren_reference_step(signal, repeats: int = 7) -> float:
    """Median s/step of the authors' SIREN (identical in inrkit) on this signal, timed now.

    The machine is shared, so absolute timings drift with its load; timing this fixed workload next to
    each case gives a load-adjusted comparison (each backbone's cost relative to SIREN's).
    """
    torch.manual_seed(0)
    model = create_model("siren", signal=signal, hidden_features=256, hidden_layers=3)
    coords, targets = signal.coords(), signal.targets() * 2 - 1
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    times = []
    for _ in range(repeats + 2):
        start = time.perf_counter()
        loss = torch.nn.functional.mse_loss(model(coords), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return float(statistics.median(times[2:]))


def run_case(row: Row, size: int, steps: int) -> dict:
    """Fit one row at one size; return PSNR, median s/step after warm-up, parameter count."""
    signal = crop(size, row.minmax)
    reference = siren_reference_step(signal)
    kwargs, notes = _accepted(row.model, row.kwargs)
    torch.manual_seed(0)
    model = create_model(row.model, signal=signal, **kwargs)
    if row.target_range is not None:
        model.target_range = row.target_range
    times: list[float] = []
    config = FitConfig(steps=steps, lr=row.lr, lr_decay=row.decay, batch_size=row.batch.get(size), seed=0,
                       device="cpu", log_every=1, eval_every=steps, progress=False)
    result = fit(model, signal, config, callback=lambda r: times.append(r["seconds"]))
    per_step = np.diff([0.0] + times)[WARMUP:]
    reference = (reference + siren_reference_step(signal)) / 2  # load before and after the case
    return {"psnr": result.metrics["psnr"], "s_per_step": float(statistics.median(per_step)), "siren_s": reference,
            "params": count_params(model), "steps": steps, "kwargs": model.model_info.kwargs, "notes": notes}


def _fmt(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _adjusted(row: Row, size: int, case: dict) -> str:
    """(authors' s/step / authors' SIREN s/step) / (ours / SIREN timed beside ours): > 1 means faster."""
    authors_siren = ROWS[0].seconds[size]
    ours = case["s_per_step"] / case["siren_s"]
    return f"{(row.seconds[size] / authors_siren) / ours:.1f}×"


def report(results: dict, sizes: list[int], command: str) -> str:
    """The Markdown table: the authors' figures beside inrkit's, and the speed ratio."""
    head = "| model | params (authors / inrkit) |"
    rule = "|---|---|"
    for s in sizes:
        head += (f" PSNR {s}² authors | PSNR {s}² inrkit | s/step {s}² authors | s/step {s}² inrkit | speed-up {s}² |"
                 f" load-adjusted speed-up {s}² |")
        rule += "---|---|---|---|---|---|"
    lines = [head, rule]
    notes = []
    for row in ROWS:
        cells = []
        ours_params = None
        for s in sizes:
            case = results.get(f"{row.key}@{s}")
            if case is None or "skipped" in case:
                cells += [_fmt(row.psnr[s]), "–", _fmt(row.seconds[s], 3), "–", "–", "–"]
                if case:
                    notes.append(f"- {row.label} at {s}²: skipped ({case['skipped']})")
                continue
            ours_params = case["params"]
            steps = f" ({case['steps']} st.)" if case["steps"] != row.steps[s] else ""
            cells += [f"{_fmt(row.psnr[s])} ({row.steps[s]} st.)", _fmt(case["psnr"]) + steps,
                      _fmt(row.seconds[s], 3), _fmt(case["s_per_step"], 3),
                      f"{row.seconds[s] / case['s_per_step']:.1f}×", _adjusted(row, s, case)]
            notes += [f"- {row.label} at {s}²: {n}" for n in case.get("notes", [])]
        params = f"{row.params:,} / {ours_params:,}" if ours_params else f"{row.params:,} / –"
        lines.append(f"| {row.label} | {params} | " + " | ".join(cells) + " |")
    text = ["# inrkit vs the authors' code on a 2-core CPU", "",
            f"Produced by `{command}` (torch {torch.__version__}, {torch.get_num_threads()} threads, seed 0).",
            "Authors' figures from `reference/authors-code-on-cpu.md`; centre crops of Kodak kodim23.",
            "PSNR: output clamped to [0, 1], peak 1. s/step: median after 5 warm-up steps (training only).",
            "Speed-up = authors' s/step / inrkit's. The machine is shared, so raw timings drift with its load;",
            "the load-adjusted speed-up compares each backbone's cost relative to SIREN (256x3, timed on the",
            "same crop just before and after the case) with the same ratio in the authors' runs.",
            "'st.' = steps when they differ from the authors'.", "",
            *lines]
    if notes:
        text += ["", "Notes:", *notes]
    return "\n".join(text) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64], choices=[64, 256])
    parser.add_argument("--quick", action="store_true", help="64² only, 100 steps (PSNR not comparable)")
    parser.add_argument("--models", nargs="+", help="row keys to run (default: all)")
    parser.add_argument("--force", action="store_true", help="re-run cases already in the results file")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the table from the results file")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    sizes = [64] if args.quick else args.sizes
    RESULTS.mkdir(exist_ok=True)
    store = RESULTS / ("authors_cpu_quick.json" if args.quick else "authors_cpu.json")
    results = json.loads(store.read_text()) if store.exists() else {}
    registered = set(list_models())
    for row in ROWS:
        if args.report_only or (args.models and row.key not in args.models):
            continue
        for s in sizes:
            key = f"{row.key}@{s}"
            if key in results and not args.force and "skipped" not in results[key]:
                continue
            if row.model not in registered:
                results[key] = {"skipped": f"model {row.model!r} is not registered"}
            else:
                steps = 100 if args.quick else row.steps[s]
                try:
                    results[key] = run_case(row, s, steps)
                except Exception as exc:  # one broken backbone must not lose the others' results
                    results[key] = {"skipped": f"{type(exc).__name__}: {exc}"}
                print(key, results[key].get("psnr"), results[key].get("s_per_step"), results[key].get("skipped", ""),
                      flush=True)
            store.write_text(json.dumps(results, indent=1))  # record each finished case as it finishes
    command = "python benchmarks/authors_cpu.py " + " ".join(argv if argv is not None else sys.argv[1:])
    name = "authors_cpu_quick.md" if args.quick else "authors_cpu.md"
    done_sizes = sorted({int(k.split("@")[1]) for k in results} | set(sizes))
    (RESULTS / name).write_text(report(results, done_sizes, command.strip()))
    print((RESULTS / name).read_text())


if __name__ == "__main__":
    main()
