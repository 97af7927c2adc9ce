"""inrkit against the authors' own code, side by side in one run on this machine.

Every case fits a centre crop of Kodak's kodim23 twice with the same backbone and settings: once with
the authors' code (`/work/shared/anchors/run_reference.py`, which imports their repositories' work
trees; see the README beside it for the set-up) and once with inrkit's recipe for that backbone
(`fit` without settings of its own except the step count, and the batch where the anchor runs full
batch but the recipe would not). Both are run as separate processes of this script's job queue,
interleaved, so load on the machine falls on both alike. PSNR is always on x/255, clamped, peak 1;
s/step is the median after 5 warm-up steps (training only). Seeds scatter widely at these PSNRs, so
the table compares means over seeds; an inrkit seed and an authors' seed do not draw the same init.

Two budgets per size:
    steps  the same step count for both (--sizes SIZE:STEPS; FKAN's notebook model is ~20x slower in the
           authors' code, so it takes --fkan-steps at 64²)
    time   the same seconds of training for both (--equal-time SIZE:SECONDS): each side runs as many
           steps as its own s/step from the steps budget fits into the time, its schedule set for them

Finished jobs are appended to `results/authors_cpu/runs.jsonl` and skipped on re-runs (Ctrl-C loses
only running jobs); the table `results/authors_cpu.md` is rebuilt from that file.

Usage (the anchors' work trees and their venv as in /work/shared/anchors/README.md):
    .venv/bin/python benchmarks/authors_cpu.py --anchors /tmp/anchors --anchors-python /tmp/anchors/venv/bin/python
    .venv/bin/python benchmarks/authors_cpu.py ... --sizes 64:300 --seeds 0 --models siren wire   # a subset
    .venv/bin/python benchmarks/authors_cpu.py --report-only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared"
IMAGE = SHARED / "data" / "kodak" / "kodim23.png"
REFERENCE = SHARED / "anchors" / "run_reference.py"
RESULTS = HERE / "results"
RUNS = RESULTS / "authors_cpu" / "runs.jsonl"
WARMUP = 5


@dataclass(frozen=True)
class Row:
    """One backbone: its inrkit name and arguments, and the anchor model id that runs the authors' code."""

    key: str
    label: str
    model: str
    anchor: str  # run_reference.py model id; ":lr=X" where inrkit's recipe takes the lr the script's comment advises
    kwargs: dict = field(default_factory=dict)
    batch: int | None = None  # points per step in both (None: full batch, as run_reference.py runs)


ROWS = [
    Row("siren", "SIREN (siren repo)", "siren", "siren"),
    Row("wire", "WIRE (wire repo)", "wire", "wire"),
    Row("gauss", "Gauss (wire repo, lr 2e-3)", "gauss", "wire.gauss:lr=2e-3"),
    Row("relu_pe", "ReLU+PE (wire repo, lr 1e-3)", "relu_pe", "wire.posenc:lr=1e-3"),
    Row("sl2a", "SL²A", "sl2a", "sl2a"),
    Row("finer", "FINER (SL²A repo's baseline)", "finer_sl2a", "finer"),
    # the notebook's network at every size (inrkit's recipe scales K with the image: 34 at 64²)
    Row("fkan", "FKAN (notebook, K = 270)", "fkan", "fkan", {"harmonics": 270}, batch=4096),
    Row("spder", "SPDER (spder repo)", "spder", "spder"),
]
BY_KEY = {r.key: r for r in ROWS}


def reference():
    """The anchors' run_reference module (its repository folders and commit lookup; torch and numpy only)."""
    if str(REFERENCE.parent) not in sys.path:
        sys.path.insert(0, str(REFERENCE.parent))
    import run_reference

    return run_reference


# ----------------------------------------------------------------------------- one job (a subprocess)
def inrkit_job(row: Row, size: int, seed: int, steps: int, threads: int) -> dict:
    """Fit inrkit's recipe for `row` on the crop; PSNR and the median s/step after the warm-up."""
    import torch

    from inrkit import FitConfig, create_model, fit, load_signal
    from inrkit.utils import count_params, seed_everything

    torch.set_num_threads(threads)
    signal = load_signal(IMAGE, crop=size)
    seed_everything(seed)  # the init is the seed's, as `inrkit fit --seed` and the bench draw it
    model = create_model(row.model, signal=signal, **row.kwargs)
    batch = row.batch or signal.num_samples
    config = FitConfig(steps=steps, seed=seed, device="cpu", progress=False, log_every=1, threads=threads,
                       batch_size=batch)
    result = fit(model, signal, config)
    clock = [0.0] + [h["seconds"] for h in result.history]
    per_step = [b - a for a, b in zip(clock, clock[1:])]
    return {"psnr": result.metrics["psnr"], "params": count_params(model), "batch": batch,
            "s_per_step": statistics.median(per_step[WARMUP:] or per_step), "s_total": result.seconds,
            "lr": result.config["lr"], "lr_decay": result.config["lr_decay"]}


def authors_job(row: Row, size: int, seed: int, steps: int, threads: int, anchors: Path, python: str) -> dict:
    """The authors' code through run_reference.py's worker (one process, as it runs every model)."""
    cmd = [python, str(REFERENCE), "--worker", "--models", row.anchor, "--sizes", f"{size}:{steps}",
           "--anchors", str(anchors), "--seed", str(seed), "--threads", str(threads), "--image", str(IMAGE)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(" | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:]))
    res, ref = json.loads(lines[-1][len("RESULT "):]), reference()
    return {"psnr": res["psnr"], "params": res["params"], "batch": res["batch"], "s_per_step": res["s_per_step"],
            "s_total": res["s_total"], "lr": res["lr"], "lr_decay": res["gamma"] or 1.0,
            "commit": ref.repo_commit(anchors / ref.REPO_DIRS[res["repo"]])}


# ----------------------------------------------------------------------------- the queue
@dataclass(frozen=True)
class Job:
    side: str  # "authors" or "inrkit"
    row: str
    size: int
    seed: int
    steps: int
    budget: str  # "steps" or "time:SECONDS"

    @property
    def key(self) -> str:
        return f"{self.side}/{self.row}/{self.size}/{self.seed}/{self.steps}/{self.budget}"


def load_runs(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_job(job: Job, args: argparse.Namespace) -> dict:
    """Run `job` in a fresh process: of this script (inrkit) or of the anchors' venv (authors)."""
    try:
        if job.side == "authors":
            res = authors_job(BY_KEY[job.row], job.size, job.seed, job.steps, args.threads, args.anchors,
                              args.anchors_python)
        else:
            cmd = [sys.executable, __file__, "--worker", job.row, str(job.size), str(job.seed), str(job.steps),
                   "--threads", str(args.threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not lines:
                raise RuntimeError(" | ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:]))
            res = json.loads(lines[-1][len("RESULT "):])
    except RuntimeError as exc:
        return {**job.__dict__, "key": job.key, "error": str(exc)}
    return {**job.__dict__, "key": job.key, **res, "threads": args.threads, "jobs": args.jobs,
            "finished": time.strftime("%Y-%m-%d %H:%M:%S")}


def run_queue(jobs: list[Job], args: argparse.Namespace) -> None:
    done = {r["key"] for r in load_runs(args.runs) if "error" not in r}
    todo = [j for j in jobs if j.key not in done]
    print(f"{len(jobs) - len(todo)} of {len(jobs)} jobs already finished; running {len(todo)}", flush=True)
    args.runs.parent.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(args.jobs) as pool, args.runs.open("a") as out:
        for job, res in zip(todo, pool.map(lambda j: run_job(j, args), todo)):
            out.write(json.dumps(res) + "\n")
            out.flush()
            shown = res.get("error") or f"{res['psnr']:.2f} dB, {res['s_per_step']:.4f} s/step"
            print(f"[{time.strftime('%H:%M:%S')}] {job.key}: {shown}", flush=True)


def step_jobs(args: argparse.Namespace) -> list[Job]:
    """The same step count for both sides, authors and inrkit interleaved."""
    jobs = []
    for size, steps in args.sizes:
        for seed in args.seeds:
            for key in args.models:
                n = args.fkan_steps if key == "fkan" and size == 64 else steps
                jobs += [Job(side, key, size, seed, n, "steps") for side in ("authors", "inrkit")]
    return jobs


def time_jobs(args: argparse.Namespace) -> list[Job]:
    """Equal seconds: each side's steps from its own s/step under the steps budget (same size, seed)."""
    rate = {(r["side"], r["row"], r["size"], r["seed"]): r["s_per_step"] for r in load_runs(args.runs)
            if r.get("budget") == "steps" and "error" not in r}
    jobs = []
    for size, seconds in args.equal_time:
        for seed in args.seeds:
            for key in args.models:
                for side in ("authors", "inrkit"):
                    per_step = rate.get((side, key, size, seed))
                    if per_step:
                        jobs.append(Job(side, key, size, seed, max(1, int(seconds / per_step)), f"time:{seconds:g}"))
    return jobs


# ----------------------------------------------------------------------------- the table
def _mean(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def report(runs: list[dict]) -> str:
    latest = {}
    for r in runs:
        if "error" not in r:
            # a re-run replaces the earlier line; a time budget's step count may change between runs
            case = (r["side"], r["row"], r["size"], r["seed"], r["budget"])
            latest[case + ((r["steps"],) if r["budget"] == "steps" else ())] = r
    rows = list(latest.values())
    if not rows:
        return "no finished runs"
    machine = {(r["threads"], r["jobs"]) for r in rows}
    lines = [
        "# inrkit vs the authors' code, side by side on one machine",
        "",
        "Produced by `python benchmarks/authors_cpu.py` (its docstring says how; the authors' code runs through "
        "`/work/shared/anchors/run_reference.py`). Centre crops of Kodak kodim23; PSNR on x/255, clamped, peak 1, "
        "**mean ± sd over seeds** (an inrkit seed and an authors' seed do not give the same init); s/step the "
        "median after 5 warm-up steps, mean over seeds. Threads per job and jobs at once: "
        + ", ".join(f"{t} × {j}" for t, j in sorted(machine)) + ". Speed-up = authors' s/step / inrkit's.",
        "",
        _measured_on(rows),
        "",
    ]
    for size in sorted({r["size"] for r in rows}):
        lines += _size_table(size, [r for r in rows if r["size"] == size])
    lines += ["", "## Every run", "", "| side | model | size | seed | budget | steps | PSNR | s/step | s total |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["size"], r["row"], r["budget"], r["seed"], r["side"])):
        lines.append(f"| {r['side']} | {r['row']} | {r['size']} | {r['seed']} | {r['budget']} | {r['steps']} | "
                     f"{r['psnr']:.2f} | {r['s_per_step']:.4f} | {r['s_total']:.1f} |")
    return "\n".join(lines) + "\n"


def _measured_on(rows: list[dict]) -> str:
    """Which rows ran when: a re-run of some rows lands on another machine of the same kind."""
    days: dict[str, set[str]] = {}
    for r in rows:
        days.setdefault(r.get("finished", "?")[:10], set()).add(r["row"])
    return ("Measured on " + "; ".join(f"{day}: {', '.join(sorted(names))}" for day, names in sorted(days.items()))
            + ". Both sides of a row always run in one queue, but timings move between machines of the same kind"
            " (runs.jsonl keeps the earlier runs of re-run rows), so compare speed-ups within a row.")


def _size_table(size: int, rows: list[dict]) -> list[str]:
    budgets = sorted({r["budget"] for r in rows if r["budget"] != "steps"})
    head = ["model", "params (authors / inrkit)", "steps", "PSNR authors", "PSNR inrkit", "Δ dB",
            "s/step authors", "s/step inrkit", "speed-up"]
    for b in budgets:
        head += [f"{b.split(':')[1]} s: PSNR authors (steps)", f"{b.split(':')[1]} s: PSNR inrkit (steps)"]
    out = [f"## {size}² crop", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    def pick(key: str, side: str, budget: str) -> list[dict]:
        return [r for r in rows if r["row"] == key and r["side"] == side and r["budget"] == budget]

    for row in ROWS:
        a, i = pick(row.key, "authors", "steps"), pick(row.key, "inrkit", "steps")
        if not a and not i:
            continue
        pa, pi = [r["psnr"] for r in a], [r["psnr"] for r in i]
        sa, si = [r["s_per_step"] for r in a], [r["s_per_step"] for r in i]
        delta = f"{statistics.mean(pi) - statistics.mean(pa):+.2f}" if pa and pi else "–"
        speed = f"{statistics.mean(sa) / statistics.mean(si):.2f}×" if sa and si else "–"
        params = f"{(a or i)[0]['params']:,} / {(i or a)[0]['params']:,}"
        steps = "/".join(sorted({str(r["steps"]) for r in a + i}))
        cells = [row.label, params, steps, _mean(pa), _mean(pi), delta,
                 f"{statistics.mean(sa):.4f}" if sa else "–", f"{statistics.mean(si):.4f}" if si else "–", speed]
        for b in budgets:
            for side in ("authors", "inrkit"):
                got = pick(row.key, side, b)
                n = "/".join(str(r["steps"]) for r in sorted(got, key=lambda r: r["seed"]))
                cells.append(f"{_mean([r['psnr'] for r in got])} ({n})" if got else "–")
        out.append("| " + " | ".join(cells) + " |")
    return out + [""]


# ----------------------------------------------------------------------------- command line
def _pairs(text: str) -> tuple[int, float]:
    size, _, value = text.partition(":")
    return int(size), float(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", type=_pairs, default=[(64, 300), (256, 25)], help="SIZE:STEPS ...")
    parser.add_argument("--equal-time", nargs="*", type=_pairs, default=[(64, 5), (256, 20)],
                        help="SIZE:SECONDS ... (none: skip the equal-time budget)")
    parser.add_argument("--fkan-steps", type=int, default=100, help="FKAN's steps at 64² (authors' ~2 s/step)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=[r.key for r in ROWS], choices=[r.key for r in ROWS])
    parser.add_argument("--threads", type=int, default=1, help="threads per job")
    parser.add_argument("--jobs", type=int, default=2, help="jobs at once (2 x 1 thread keeps both cores busy)")
    parser.add_argument("--anchors", type=Path, default=Path(os.environ.get("INRKIT_ANCHORS", "/tmp/anchors")))
    parser.add_argument("--anchors-python", default=os.environ.get("INRKIT_ANCHORS_PYTHON", sys.executable),
                        help="python of the venv that can import the authors' code (torch, cv2, ...)")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--runs", type=Path, default=RUNS, help="the JSON-lines file of finished jobs")
    parser.add_argument("--worker", nargs=4, metavar=("MODEL", "SIZE", "SEED", "STEPS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        key, size, seed, steps = args.worker
        print("RESULT " + json.dumps(inrkit_job(BY_KEY[key], int(size), int(seed), int(steps), args.threads)))
        return
    if not args.report_only:
        args.sizes = [(int(s), int(n)) for s, n in args.sizes]
        run_queue(step_jobs(args), args)
        run_queue(time_jobs(args), args)
    table = RESULTS / "authors_cpu.md" if args.runs.resolve() == RUNS else args.runs.with_suffix(".md")
    table.write_text(report(load_runs(args.runs)))
    print(f"wrote {table}")


if __name__ == "__main__":
    main()
