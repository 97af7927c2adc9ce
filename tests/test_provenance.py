"""Provenance: every metrics.json and bench row says which code, command, hardware and file made it."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from inrkit import FitConfig, provenance
from inrkit.bench import ResultStore, run_benchmark
from inrkit.runs import run_fit

ROOT = Path(__file__).resolve().parent.parent


def _image(path: Path, seed: int = 0) -> Path:
    iio.imwrite(path, (np.random.default_rng(seed).random((16, 16, 3)) * 255).astype(np.uint8))
    return path


def test_file_hash_is_the_sha256_of_the_bytes_and_follows_changes(tmp_path: Path) -> None:
    path = _image(tmp_path / "a.png")
    assert provenance.file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    _image(path, seed=1)
    assert provenance.file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()  # not a stale cache
    frames = tmp_path / "clip"
    frames.mkdir()
    _image(frames / "0.png")
    first = provenance.file_sha256(frames)
    _image(frames / "1.png", seed=2)
    assert provenance.file_sha256(frames) != first and len(first) == 64


def test_git_state_matches_the_checkout() -> None:
    state = provenance.git_state()
    if (ROOT / ".git").exists():
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
        assert state is not None and state["commit"] == head.strip() and isinstance(state["dirty"], bool)
    assert provenance.git_state(ROOT / "tests") is None  # not a checkout root: no claim


def test_metrics_json_and_bench_rows_carry_provenance(tmp_path: Path) -> None:
    image = _image(tmp_path / "img.png")
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    _, run = run_fit(image, "siren", out=tmp_path / "run", config=FitConfig(steps=3, device="cpu", progress=False),
                     params=2000, checkpoint=False, plots=False)
    record = json.loads((run / "metrics.json").read_text())
    assert record["signal_sha256"] == digest
    assert record["cpu"] and record["command"] and "gpu" in record and "git" in record
    bench = run_benchmark({"signals": [str(image)], "models": ["siren"], "seeds": [0], "steps": 3, "device": "cpu",
                           "params": 2000, "out": str(tmp_path / "bench")}, progress=False, report=False)
    (row,) = ResultStore(bench.out).rows()
    assert row["versions"]["signal_sha256"] == digest and row["versions"]["cpu"] == record["cpu"]
    assert row["versions"]["git"] == record["git"] and row["versions"]["gpu"] is None
