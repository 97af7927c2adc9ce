"""Peak memory of a fit against signal size, for audio and video: it should stay flat beyond the signal.

Each case runs in its own process (peak RSS is a high-water mark per process): it builds a synthetic
signal in place (no transient copy), a small SIREN, then fits a few random-batch steps with a
progress evaluation every step and the full evaluation at the end. Reported: the resident memory
just before the fit and the peak during it; their difference is what a fit costs beyond the signal.

Usage:
    .venv/bin/python benchmarks/memory.py            # all cases, writes benchmarks/results/memory.{md,json,png}
    .venv/bin/python benchmarks/memory.py --quick    # the two smallest sizes of each kind
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
CASES = {
    "audio": [(1 << 16,), (1 << 18,), (1 << 20,), (1 << 21,)],
    "video": [(8, 64, 64), (16, 128, 128), (32, 128, 256), (32, 256, 256)],
}
STEPS, BATCH, WIDTH = 3, 4096, 64
MIB = 1 << 20


def rss_now() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def one_case(kind: str, shape: tuple[int, ...]) -> dict:
    """Run in a child process: fit once and report memory figures in bytes."""
    import torch

    from inrkit import create_model
    from inrkit.fit import FitConfig, fit
    from inrkit.signals import Signal

    torch.set_num_threads(2)
    channels = 1 if kind == "audio" else 3
    low = -1.0 if kind == "audio" else 0.0
    values = torch.empty(*shape, channels).uniform_(low, 1.0)  # filled in place: no second copy
    meta = {"name": f"{kind}-{'x'.join(map(str, shape))}", "sample_rate": 44100, "fps": 25.0}
    signal = Signal(kind, values, (low, 1.0), meta=meta)
    torch.manual_seed(0)
    model = create_model("siren", signal=signal, hidden_features=WIDTH, hidden_layers=2)
    before, peak_before = rss_now(), peak_rss()
    start = time.perf_counter()
    result = fit(model, signal, FitConfig(steps=STEPS, batch_size=BATCH, eval_every=1, progress=False, device="cpu"))
    return {"kind": kind, "shape": list(shape), "samples": signal.num_samples,
            "signal_bytes": values.numel() * values.element_size(), "rss_before_fit": before,
            "peak_before_fit": peak_before, "peak_during_fit": peak_rss(),
            "seconds": round(time.perf_counter() - start, 2), "psnr": round(result.metrics["psnr"], 2)}


def run_all(quick: bool) -> list[dict]:
    rows = []
    for kind, shapes in CASES.items():
        for shape in shapes[:2] if quick else shapes:
            arg = f"{kind}:{'x'.join(map(str, shape))}"
            out = subprocess.run([sys.executable, __file__, "--case", arg], capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{arg:22s} signal {row['signal_bytes'] / MIB:8.1f} MiB  overhead "
                  f"{(row['peak_during_fit'] - row['rss_before_fit']) / MIB:7.1f} MiB  ({row['seconds']} s)",
                  flush=True)
    return rows


def write_report(rows: list[dict], command: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "memory.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["# Peak memory of a fit against signal size", "",
             f"Command: `{command}`  ", (f"SIREN width {WIDTH}, 3 layers, {STEPS} random-batch steps of {BATCH} "
                                         "samples, progress evaluation every step, full evaluation at the end; "
                                         "CPU, one process per case."),
             "Overhead = peak RSS during the fit − RSS just before it (the signal is already in memory).", "",
             "| kind | shape | samples | signal MiB | RSS before fit MiB | peak in fit MiB | overhead MiB "
             "| overhead / signal |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        over = r["peak_during_fit"] - r["rss_before_fit"]
        lines.append(f"| {r['kind']} | {'x'.join(map(str, r['shape']))} | {r['samples']:,} | "
                     f"{r['signal_bytes'] / MIB:.1f} | {r['rss_before_fit'] / MIB:.0f} | "
                     f"{r['peak_during_fit'] / MIB:.0f} | "
                     f"{over / MIB:.1f} | {over / r['signal_bytes']:.2f} |")
    (RESULTS / "memory.md").write_text("\n".join(lines) + "\n\n![overhead](memory.png)\n")
    plot(rows)


def plot(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for kind, marker in (("audio", "o"), ("video", "s")):
        sel = [r for r in rows if r["kind"] == kind]
        if not sel:
            continue
        xs = [r["samples"] for r in sel]
        ax.plot(xs, [(r["peak_during_fit"] - r["rss_before_fit"]) / MIB for r in sel], marker=marker,
                label=f"{kind}: fit overhead")
        ax.plot(xs, [r["signal_bytes"] / MIB for r in sel], ls="--", marker=marker, alpha=0.5, label=f"{kind}: signal")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("samples in the signal")
    ax.set_ylabel("MiB")
    ax.set_title("Peak memory of a fit beyond the signal")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "memory.png", dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    if "--case" in sys.argv:
        kind, dims = sys.argv[sys.argv.index("--case") + 1].split(":")
        print(json.dumps(one_case(kind, tuple(int(d) for d in dims.split("x")))))
    else:
        quick = "--quick" in sys.argv
        write_report(run_all(quick), "python benchmarks/memory.py" + (" --quick" if quick else ""))
