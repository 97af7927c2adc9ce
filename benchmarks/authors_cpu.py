"""inrkit's backbones against the authors' own code, on the settings of `reference/authors-code-on-cpu.md`.

Each row fits a centre crop of Kodak's kodim23 with the same width, depth, learning rate, schedule,
target range and number of steps as the authors' script did in that note (seed 0, 2 threads,
full batch except FKAN at 256²), and records PSNR (output clamped to [0, 1], peak 1) and the median
seconds per step after 5 warm-up steps. The authors' figures sit beside ours in
`benchmarks/results/authors_cpu.md`. To run the authors' code itself beside inrkit on this machine,
see `/work/shared/anchors/README.md`.

Each (row, size) is one case of the `inrkit.bench` runner with this script's own case runner
("authors_cpu", registered below): finished cases are kept in `results/authors_cpu/results.sqlite`
and skipped on re-runs (use --force to redo them); cases that failed (e.g. a backbone not registered)
are retried. The table is rebuilt from that store.

Usage:
    .venv/bin/python benchmarks/authors_cpu.py --quick            # 64² only, 100 steps
    .venv/bin/python benchmarks/authors_cpu.py --sizes 64         # the authors' 64² column (300 steps)
    .venv/bin/python benchmarks/authors_cpu.py --sizes 64 256     # both columns (256² takes ~1 s/step)
    .venv/bin/python benchmarks/authors_cpu.py --report-only      # only rewrite the table from the store
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import torch

from inrkit import FitConfig, create_model, fit, load_signal
from inrkit.bench import BenchSpec, CaseContext, ModelSpec, ResultStore, register_runner, run_cases
from inrkit.bench.spec import Case, make_case
from inrkit.bench.store import row_key
from inrkit.models import get_entry
from inrkit.utils import count_params

HERE = Path(__file__).resolve().parent
IMAGE = HERE.parents[1] / "shared" / "data" / "kodak" / "kodim23.png"
RESULTS = HERE / "results"
WARMUP = 5
SIZES = (64, 256)


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


WIRE_REPO = {"lr": 5e-3, "decay": 0.1, "minmax": True}
ROWS = [
    Row("siren", "SIREN (siren repo)", "siren", {"hidden_features": 256, "hidden_layers": 3}, 1e-4, 1.0, False,
        198_915, {64: 47.70, 256: 31.00}, {64: 300, 256: 200}, {64: 0.034, 256: 0.939}),
    Row("wire", "WIRE (wire repo)", "wire",
        {"hidden_features": 256, "hidden_layers": 2, "first_omega_0": 20.0, "hidden_omega_0": 20.0, "sigma": 30.0},
        **WIRE_REPO, params=133_403, psnr={64: 66.69, 256: 21.67}, steps={64: 300, 256: 40},
        seconds={64: 0.669, 256: 13.136}),
    Row("siren-wire", "SIREN as the wire repo runs it", "siren",
        {"hidden_features": 256, "hidden_layers": 2, "first_omega_0": 20.0, "hidden_omega_0": 20.0}, **WIRE_REPO,
        params=133_123, psnr={64: 82.62, 256: 22.12}, steps={64: 300, 256: 200}, seconds={64: 0.025, 256: 0.711},
        target_range=(0.0, 1.0)),
    Row("gauss", "Gauss (wire repo)", "gauss", {"hidden_features": 256, "hidden_layers": 2, "sigma": 30.0}, **WIRE_REPO,
        params=133_123, psnr={64: 57.17, 256: 21.90}, steps={64: 300, 256: 50}, seconds={64: 0.315, 256: 5.976}),
    Row("relu_pe", "ReLU+PE (wire repo)", "relu_pe", {"hidden_features": 256, "hidden_layers": 2}, **WIRE_REPO,
        params=137_219, psnr={64: 40.84, 256: 23.50}, steps={64: 300, 256: 200}, seconds={64: 0.023, 256: 0.521}),
    Row("sl2a", "SL²A", "sl2a", {"hidden_features": 256, "hidden_layers": 3, "degree": 256, "rank": 128},
        1e-3, 0.1, True,
        330_243, {64: 50.31, 256: 29.48}, {64: 300, 256: 200}, {64: 0.060, 256: 1.683}),
    Row("finer", "FINER (SL²A repo)", "finer_sl2a", {"hidden_features": 256, "hidden_layers": 3},
        1e-4, 0.1, True, 198_915, {64: 47.19, 256: 19.06}, {64: 300, 256: 200}, {64: 0.049, 256: 1.962}),
    Row("fkan", "FKAN (notebook)", "fkan", {}, 1e-4, 0.1, True, 436_367, {64: 35.86, 256: 13.82},
        {64: 300, 256: 200}, {64: 2.138, 256: 2.060}, batch={256: 4096}),
    Row("spder", "SPDER (spder repo)", "spder", {"hidden_features": 256, "hidden_layers": 5}, 1e-4, 1.0, False,
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


def cases_for(rows: list[Row], sizes: list[int], quick: bool) -> list[Case]:
    """One bench case per (row, size): the row's constructor, lr, schedule and batch; crop and scaling as options."""
    return [make_case(str(IMAGE), "image", ModelSpec(row.model, row.key, dict(row.kwargs)), 0, device="cpu",
                      fit={"steps": 100 if quick else row.steps[s], "lr": row.lr, "lr_decay": row.decay,
                           "batch_size": row.batch.get(s)},
                      options={"size": s, "minmax": row.minmax, "target_range": row.target_range},
                      runner="authors_cpu")
            for row in rows for s in sizes]


@register_runner("authors_cpu")
def authors_case(case: Case, context: CaseContext) -> dict[str, Any]:
    """Fit one row at one size; PSNR, median s/step after warm-up, SIREN's s/step timed beside it, size."""
    signal = crop(case.options["size"], case.options["minmax"])
    reference = siren_reference_step(signal)
    kwargs, notes = _accepted(case.model.name, case.model.overrides)
    torch.manual_seed(case.seed)
    model = create_model(case.model.name, signal=signal, **kwargs)
    if case.options["target_range"] is not None:
        model.target_range = tuple(case.options["target_range"])
    times: list[float] = []
    steps = case.fit["steps"]
    config = FitConfig(**case.fit, seed=case.seed, device=case.device, log_every=1, eval_every=steps, progress=False)
    on_step = context.on_step or (lambda step: None)
    result = fit(model, signal, config, callback=lambda r: (times.append(r["seconds"]), on_step(int(r["step"]))))
    if result.interrupted:
        raise KeyboardInterrupt
    per_step = np.diff([0.0] + times)[WARMUP:]
    reference = (reference + siren_reference_step(signal)) / 2  # load before and after the case
    return {"metrics": {"psnr": result.metrics["psnr"], "s_per_step": float(statistics.median(per_step)),
                        "siren_s": reference},
            "params": count_params(model), "steps": steps, "seconds": result.seconds, "device": case.device,
            "extra": {"kwargs": model.model_info.kwargs, "notes": notes}}


def stored_results(store: ResultStore, cases: list[Case]) -> dict[str, dict[str, Any]]:
    """'row@size' -> what the table shows, from the store rows of these cases (a failed case: 'skipped')."""
    rows = {row_key(r): r for r in store.rows()}
    results = {}
    for case in cases:
        row = rows.get(case.key)
        if row is None:
            continue
        name = f"{case.model.label}@{case.options['size']}"
        results[name] = ({"skipped": row["error"]} if row["status"] != "ok" else
                         {**row["metrics"], "params": row["params"], "steps": row["steps"], **row["extra"]})
    return results


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
    parser.add_argument("--sizes", type=int, nargs="+", default=[64], choices=list(SIZES))
    parser.add_argument("--quick", action="store_true", help="64² only, 100 steps (PSNR not comparable)")
    parser.add_argument("--models", nargs="+", help="row keys to run (default: all)")
    parser.add_argument("--force", action="store_true", help="re-run cases already in the results store")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the table from the results store")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the store folder and the table")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    sizes = [64] if args.quick else args.sizes
    name = "authors_cpu_quick" if args.quick else "authors_cpu"
    spec = BenchSpec(out=str(args.out / name), device="cpu", retry_errors=True)
    selected = [r for r in ROWS if not args.models or r.key in args.models]
    todo = [] if args.report_only else cases_for(selected, sizes, args.quick)
    if args.force:
        ResultStore(spec.out).remove({c.key for c in todo})
    run_cases(todo, spec, report=False)
    every = cases_for(ROWS, [64] if args.quick else list(SIZES), args.quick)
    results = stored_results(ResultStore(spec.out), every)
    command = "python benchmarks/authors_cpu.py " + " ".join(argv if argv is not None else sys.argv[1:])
    done_sizes = sorted({int(k.split("@")[1]) for k in results} | set(sizes))
    table = args.out / f"{name}.md"
    table.write_text(report(results, done_sizes, command.strip()))
    print(table.read_text())


if __name__ == "__main__":
    main()
