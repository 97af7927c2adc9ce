"""Mutation fuzzing of .inrz and weights files: every damaged file must load or be refused in one line.

Valid files of several backbones (tiny random models) are mutated — structured edits of the header
JSON / safetensors metadata (type swaps, deletions, huge / negative / NaN numbers, shape and bit
edits, truncations, extra keys) and raw payload edits — and the .inrz checksum and lengths are
recomputed, so only inrkit's own checks stand between the mutation and the decoder. Each case ends
as one of:

- ok: loaded. A header edit that loads must give the same tensors as the original file (a free
  field such as an omega, a data range or a name changed; the payload cannot contradict those);
- rejected: an `inrkit.errors.InrkitError`;
- other: any other exception (a bug; a sample is kept);
- hang: over the per-case timeout;
- silent: a header edit loaded into tensors that differ from the original's — a header that
  disagrees with its payload decoded into something else. Must be 0.

Run: `.venv/bin/python benchmarks/fuzz_files.py --mutations 5000 --seed 0` (writes
benchmarks/results/fuzz_files.md); `run_file_fuzz(n, seed)` is the importable entry point.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from fuzz_mutations import mutate_inrz, mutate_weights  # beside this script (benchmarks/ on sys.path)

from inrkit import create_model
from inrkit.errors import InrkitError
from inrkit.export import load, save
from inrkit.export.inrz import decode, encode
from inrkit.export.quantize import QuantSpec
from inrkit.signals import SignalInfo

IMAGE = SignalInfo("image", (16, 16), 3, (0.0, 1.0), {"name": "fuzz", "source": "fuzz.png"})
AUDIO = SignalInfo("audio", (64,), 1, (-1.0, 1.0), {"name": "fuzz", "sample_rate": 8000})
# Tiny versions of each backbone (random weights: the file format does not care whether they were fitted).
BACKBONES: dict[str, tuple[SignalInfo, dict[str, Any]]] = {
    "siren": (IMAGE, {"hidden_features": 16, "hidden_layers": 2}),
    "siren-audio": (AUDIO, {"hidden_features": 8, "hidden_layers": 1}),
    "ffn": (IMAGE, {"hidden_features": 16, "num_frequencies": 16}),
    "wire": (IMAGE, {"hidden_features": 16, "hidden_layers": 1}),
    "spder": (IMAGE, {"hidden_features": 16, "hidden_layers": 2}),
    "neurbf": (IMAGE, {"num_kernels": 8, "grid_finest": 16, "rbf_channels": 4, "decoder_features": 8}),
    "fkan": (IMAGE, {"hidden_features": 8, "hidden_layers": 1, "harmonics": 8}),
    "finer": (IMAGE, {"hidden_features": 16, "hidden_layers": 1}),
    "gauss": (IMAGE, {"hidden_features": 16, "hidden_layers": 1}),
    "relu_pe": (IMAGE, {"hidden_features": 16, "hidden_layers": 1}),
    "sl2a": (IMAGE, {"hidden_features": 16, "hidden_layers": 1}),
    "ngp": (IMAGE, {"hashmap_size": 256, "levels": 4, "hidden_features": 16, "hidden_layers": 1}),
}
SPECS = (QuantSpec(8), QuantSpec(4, per_channel=True), QuantSpec(None, buffer_bits=None),
         QuantSpec(6, prune=0.3, buffer_bits=12))


class Hang(Exception):
    """Raised by the alarm when one case runs past its timeout."""


def corpus() -> list[dict[str, Any]]:
    """The valid files: per backbone, one weights file and two .inrz (two of the quantisation specs, in turn)."""
    files = []
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, (info, kwargs)) in enumerate(BACKBONES.items()):
            model = create_model(label.split("-")[0], signal=info, **kwargs)
            path = save(model, Path(tmp) / f"{label}.safetensors")
            files.append({"kind": "weights", "label": label, "data": path.read_bytes(),
                          "state": _state(model)})
            for spec in (SPECS[i % len(SPECS)], SPECS[(i + 1) % len(SPECS)]):  # each spec over half the backbones
                data, _ = encode(model, spec)
                files.append({"kind": "inrz", "label": f"{label}/{spec.bits}", "data": data,
                              "state": _state(decode(data))})
    return files


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    if a.keys() != b.keys():
        return False
    return all(x.shape == y.shape and x.dtype == y.dtype and torch.equal(x, y) for x, y in
               ((a[k], b[k]) for k in a))


# ---- running -------------------------------------------------------------------------------------------------


def _alarm(_signum: int, _frame: Any) -> None:
    raise Hang


def run_case(load_one: Callable[[], dict[str, torch.Tensor]], timeout: float) -> tuple[str, Any]:
    """('ok', state) | ('rejected', msg) | ('other', exc) | ('hang', None) for one decode."""
    # The alarm interrupts Python-level loops; it can only be set from the main thread.
    timed = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if timed:
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    start = time.perf_counter()
    try:
        state = load_one()
        outcome: tuple[str, Any] = ("ok", state)
    except Hang:
        outcome = ("hang", None)
    except InrkitError as exc:
        outcome = ("rejected", str(exc))
    except Exception as exc:  # noqa: BLE001 - counting foreign exceptions is the point
        outcome = ("other", exc)
    finally:
        if timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    if outcome[0] != "hang" and time.perf_counter() - start > timeout:
        outcome = ("hang", None)
    return outcome


def run_file_fuzz(n: int, seed: int, timeout: float = 20.0) -> dict[str, Any]:
    """Mutate `n` files (seeded) and count the outcomes; see the module docstring.

    Returns a dict with mutations = ok + rejected + other + hangs + silent; ok_header_edited (the
    part of ok where a free header field changed and the tensors stayed the same), peak_mb,
    seconds, by_kind (counts per file kind) and samples (a few descriptions per outcome).

    Example:
        >>> counts = run_file_fuzz(20, seed=1)  # doctest: +SKIP
        >>> counts["other"], counts["hangs"], counts["silent"]  # doctest: +SKIP
        (0, 0, 0)
    """
    rng = random.Random(seed)
    files = corpus()
    counts: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    rejected_by: Counter[str] = Counter()
    samples: dict[str, list[str]] = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        weights_path = Path(tmp) / "mutated.safetensors"
        for i in range(n):
            original = files[i % len(files)]
            if original["kind"] == "inrz":
                data, what, header_only = mutate_inrz(rng, original["data"])

                def load_one(data: bytes = data) -> dict[str, torch.Tensor]:
                    return _state(decode(data, "fuzz.inrz"))
            else:
                data, what, header_only = mutate_weights(rng, original["data"])
                weights_path.write_bytes(data)

                def load_one() -> dict[str, torch.Tensor]:
                    return _state(load(weights_path))
            outcome, detail = run_case(load_one, timeout)
            label = outcome
            if outcome == "ok" and header_only and data != original["data"]:
                label = "ok_header_edited" if _same(detail, original["state"]) else "silent"
            counts[label] += 1
            if label == "rejected":
                rejected_by[_field(str(detail))] += 1
            by_kind[f"{original['kind']} {label}"] += 1
            note = f"{original['label']}: {what}"
            if label in ("other", "rejected"):
                note += f" -> {type(detail).__name__ if label == 'other' else ''}{detail}"[:200]
            if len(samples.setdefault(label, [])) < (12 if label in ("other", "silent", "hang") else 4):
                samples[label].append(note)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"mutations": n, "seed": seed, "ok": counts["ok"] + counts["ok_header_edited"],
            "ok_header_edited": counts["ok_header_edited"],
            "rejected": counts["rejected"], "other": counts["other"], "hangs": counts["hang"],
            "silent": counts["silent"], "peak_mb": round(peak_mb, 1),
            "seconds": round(time.perf_counter() - start, 1), "files": len(files),
            "by_kind": dict(sorted(by_kind.items())), "rejected_by": dict(rejected_by.most_common(25)),
            "samples": samples}


def _field(message: str) -> str:
    """What a rejection names after the file: 'tensors[3]', 'model.kwargs.sigma', 'checksum', ..."""
    rest = message.split(": ", 1)[1] if ": " in message else message
    head = rest.split(":", 1)[0] if ":" in rest else " ".join(rest.split()[:4])
    head = head.split(" (", 1)[0].split(" has ", 1)[0].split(" is ", 1)[0]
    return "tensors[i]" + head[head.index("]") + 1:] if head.startswith("tensors[") else head[:60]


def report(result: dict[str, Any], command: str) -> str:
    """The markdown table of one run."""
    lines = ["# .inrz / weights file fuzzing", "", f"Command: `{command}`", "",
             f"{result['files']} valid files (backbones: {', '.join(BACKBONES)}; a weights file each and two "
             f".inrz each, at two of bits {', '.join(str(s.bits) for s in SPECS)} in turn), mutated with the .inrz "
             "checksum recomputed.", "",
             "| mutations | ok (loaded) | of which a free header field edited (same tensors) | rejected "
             "(inrkit error) | other exceptions | hangs | silent disagreements | peak MB | seconds |",
             "|---|---|---|---|---|---|---|---|---|",
             f"| {result['mutations']} | {result['ok']} | {result['ok_header_edited']} | {result['rejected']} | "
             f"{result['other']} | {result['hangs']} | {result['silent']} | {result['peak_mb']} | "
             f"{result['seconds']} |", "", "Per file kind: " + ", ".join(f"{k} {v}" for k, v in
                                                                         result["by_kind"].items()), "",
             "Rejections by the field the message names (top 25): " + ", ".join(
                 f"{k} {v}" for k, v in result["rejected_by"].items()), ""]
    for label, notes in result["samples"].items():
        lines += [f"Samples ({label}):", ""] + [f"- {note}" for note in notes] + [""]
    lines.append("Peak MB is the process's peak resident memory (torch and inrkit included). Seconds were "
                 "measured on a shared, loaded 2-core machine.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutations", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per case before it counts as a hang")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "fuzz_files.md")
    args = parser.parse_args(argv)
    result = run_file_fuzz(args.mutations, args.seed, args.timeout)
    command = f".venv/bin/python benchmarks/fuzz_files.py --mutations {args.mutations} --seed {args.seed}"
    args.out.write_text(report(result, command))
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=1))
    for note in result["samples"].get("other", []) + result["samples"].get("silent", []):
        print("  ", note)
    return 0 if result["other"] == result["hangs"] == result["silent"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
