"""`inrkit bench`: a grid killed by SIGKILL resumes to exactly the same store and tables; errors become rows."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from contextlib import closing
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import inrkit
from inrkit.bench import ResultStore, load_spec, resolve, run_benchmark
from inrkit.bench.report import kind_table
from inrkit.bench.runner import run_isolated
from inrkit.cli import app

MODELS = "siren,ffn,siren:hidden_layers=1"
TIMING = ("seconds", "time_to_target")
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny fits: threads only spin on a shared CPU


@pytest.fixture(scope="module")
def signals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("signals")
    y, x = np.mgrid[0:16, 0:16] / 15.0
    for i, img in enumerate([np.stack([x, y, x * y], -1), np.stack([y * y, 0.5 + 0 * x, x], -1),
                             np.stack([0.5 + 0.4 * np.cos(4 * y), x, 1 - x], -1)]):
        iio.imwrite(folder / f"img{i}.png", (np.clip(img, 0, 1) * 255).astype(np.uint8))
    return folder


def bench_args(signals: Path, out: Path) -> list[str]:
    return ["bench", "--signals", str(signals), "--models", MODELS, "--seeds", "0,1", "--steps", "15",
            "--device", "cpu", "--out", str(out), "--quiet"]


def csv_without_timing(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if not k.startswith(TIMING)} for row in csv.DictReader(f)]


def md_without_timing(path: Path) -> list[list[str]]:
    lines = [[c.strip().strip("*") for c in line.strip("|").split("|")] for line in path.read_text().splitlines()]
    keep = [i for i, name in enumerate(lines[0]) if name not in TIMING]
    return [[row[i] for i in keep] for row in lines]


@pytest.fixture(scope="module")
def uninterrupted(signals: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "bench"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the subprocesses below, so the numbers are bit-identical
    try:
        result = CliRunner().invoke(app, bench_args(signals, out))
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    return out


def test_sigkill_midway_then_resume_gives_the_same_18_rows_and_tables(signals: Path, uninterrupted: Path,
                                                                       tmp_path: Path) -> None:
    out = tmp_path / "bench"
    command = [sys.executable, "-m", "inrkit", *bench_args(signals, out)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ONE_THREAD)
    db, rows = out / ResultStore.FILENAME, 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            with closing(sqlite3.connect(db, timeout=10)) as conn:  # closed: no stale view of the WAL later
                try:
                    rows = conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
                except sqlite3.OperationalError:  # table not created yet
                    rows = 0
            if rows >= 4:
                break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = ResultStore(out).count()
    assert 4 <= killed_at < 18, "the kill must land midway"

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=120, env=ONE_THREAD, check=False)
    assert resumed.returncode == 0, resumed.stderr
    store = ResultStore(out)
    assert store.count() == 18 and len(store.done_keys()) == 18
    assert all(r["status"] == "ok" for r in store.rows())
    assert csv_without_timing(out / "table_image.csv") == csv_without_timing(uninterrupted / "table_image.csv")
    assert md_without_timing(out / "table_image.md") == md_without_timing(uninterrupted / "table_image.md")

    again = run_benchmark(load_spec(out / "spec.resolved.json"), progress=False, report=False)
    assert (again.total, again.ran) == (18, 0) and ResultStore(out).count() == 18  # the resolved spec = same cases


def test_tables_match_the_store(uninterrupted: Path) -> None:
    rows = ResultStore(uninterrupted).rows()
    per_seed: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        per_seed[r["model"]][r["seed"]].append(r["metrics"]["psnr"])
    with open(uninterrupted / "table_image.csv", newline="") as f:
        table = {row["model"]: row for row in csv.DictReader(f)}
    assert set(table) == {"siren", "ffn", "siren:hidden_layers=1"}
    for model, seeds in per_seed.items():
        means = [np.mean(v) for v in seeds.values()]
        assert float(table[model]["psnr_mean"]) == pytest.approx(np.mean(means), rel=1e-5)
        assert float(table[model]["psnr_std"]) == pytest.approx(np.std(means, ddof=1), rel=1e-4, abs=1e-6)
        assert int(table[model]["params"]) == rows[[r["model"] for r in rows].index(model)]["params"]
    best = max(table.values(), key=lambda row: float(row["psnr_mean"]))["model"]
    best_line = next(line for line in (uninterrupted / "table_image.md").read_text().splitlines()
                     if line.startswith(f"| {best} |"))
    assert best_line.split("|")[3].strip().startswith("**"), "the best PSNR is in bold"


def test_reports_and_plots_are_written_and_rebuilt_on_demand(uninterrupted: Path) -> None:
    for name in ("report.md", "results.csv", "table_image.md", "spec.resolved.json", "curves_image.png",
                 "quality_vs_params_image.png", "gallery_image.png"):
        assert (uninterrupted / name).stat().st_size > 0, name
    (uninterrupted / "report.md").unlink()
    result = CliRunner().invoke(app, ["bench", "report", str(uninterrupted)])
    assert result.exit_code == 0, result.output
    assert "| ffn |" in (uninterrupted / "report.md").read_text()
    assert load_spec(uninterrupted / "spec.resolved.json").seeds == [0, 1]  # the resolved spec re-runs


def test_failures_become_error_rows_and_the_run_goes_on(signals: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    fit_module = sys.modules["inrkit.fit"]
    real_fit = fit_module.fit

    def diverging_fit(model, signal, config=None, **kw):
        if model.model_info.name == "ffn":
            raise inrkit.FitDiverged("loss became nan at step 3; try a lower --lr")
        return real_fit(model, signal, config, **kw)

    monkeypatch.setattr(fit_module, "fit", diverging_fit)
    spec = {"signals": [str(signals / "img0.png"), str(broken)], "models": ["siren", "ffn"], "seeds": [0],
            "steps": 5, "device": "cpu", "out": str(tmp_path / "b")}
    run = run_benchmark(spec, progress=False)
    rows = {(r["signal_name"], r["model"]): r for r in ResultStore(run.out).rows()}
    assert run.total == 4 and run.errors == 3 and len(rows) == 4
    assert rows[("img0", "siren")]["status"] == "ok"
    assert rows[("img0", "ffn")]["error"].startswith("FitDiverged: loss became nan")
    assert "cannot read as an image" in rows[("broken", "siren")]["error"]
    assert "## Failed cases" in (run.out / "report.md").read_text()
    assert run_benchmark(spec, progress=False, report=False).ran == 0  # errors count as finished
    retried = run_benchmark({**spec, "retry_errors": True}, progress=False, report=False)
    assert retried.ran == 3 and ResultStore(run.out).count() == 4


def test_isolated_case_runs_in_a_child_and_a_crash_becomes_an_error_row(signals: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_spec_from(tmp_path, f'signals = ["{signals / "img1.png"}"]\nmodels = ["siren"]\nsteps = 10\n'
                                    'device = "cpu"\n[image]\ncrop = 12\nlr = 1e-3\n')
    case = resolve(spec)[0]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert case.load == {"crop": 12} and case.fit == {"steps": 10, "lr": 1e-3}
    steps: list[int] = []
    row = run_isolated(case, tmp_path, on_step=steps.append)
    assert row["status"] == "ok" and row["metrics"]["psnr"] > 10 and steps[-1] == 10
    crasher = tmp_path / "crash.sh"
    crasher.write_text("#!/bin/sh\necho 'about to crash' >&2\nkill -9 $$\n")
    crasher.chmod(0o755)
    monkeypatch.setattr("inrkit.bench.runner.sys.executable", str(crasher))
    row = run_isolated(case, tmp_path)
    assert row["status"] == "error" and "killed by signal 9" in row["error"] and "about to crash" in row["error"]


def load_spec_from(folder: Path, text: str):
    path = folder / "spec.toml"
    path.write_text(text)
    return load_spec(path)


def test_spec_changes_give_new_cases_and_bad_specs_fail_clearly(signals: Path, tmp_path: Path) -> None:
    base = load_spec_from(tmp_path, f'signals = ["{signals}/*.png"]\nmodels = ["s*"]\nseeds = [0, 1]\n')
    more = load_spec_from(tmp_path, f'signals = ["{signals}/*.png"]\nmodels = ["s*"]\nseeds = [0, 1]\nsteps = 7\n')
    assert {c.model.name for c in resolve(base)} == set(inrkit.list_models("s*"))
    assert {c.config_hash for c in resolve(base)}.isdisjoint({c.config_hash for c in resolve(more)})
    timed = load_spec(tmp_path / "spec.toml", target_psnr=30.0)
    assert all(c.fit == {"steps": 7, "target_psnr": 30.0} for c in resolve(timed))
    result = CliRunner().invoke(app, ["bench", "--signals", str(signals), "--models", "nosuch", "--out",
                                      str(tmp_path / "x")])
    assert result.exit_code == 2 and "unknown model 'nosuch'" in result.output
    result = CliRunner().invoke(app, ["bench", str(tmp_path / "missing.toml")])
    assert result.exit_code == 2 and "no such spec file" in result.output


def test_published_numbers_appear_for_matching_data() -> None:
    row = {"model": "siren", "model_name": "siren", "params": 198_915, "seed": 0, "signal": "/d/finer_div2k/00.png",
           "signal_name": "00", "metrics": {"psnr": 30.0}, "seconds": 1.0, "time_to_target": None}
    table = kind_table([row], "image")
    assert table[0]["published PSNR (DIV2K 512², avg of 16)"] == 33.47
    assert not any(k.startswith("published") for k in kind_table([{**row, "signal": "/d/kodim01.png"}], "image")[0])


def test_each_kind_gets_its_own_table_and_gallery_thumbnails(signals: Path, tmp_path: Path) -> None:
    import soundfile

    wav = tmp_path / "tone.wav"
    soundfile.write(wav, (0.5 * np.sin(np.linspace(0, 60, 400))).astype(np.float32), 8000)
    run = run_benchmark({"signals": [str(signals / "img2.png"), str(wav)], "models": ["siren"], "seeds": [0],
                         "steps": 5, "device": "cpu", "out": str(tmp_path / "k")}, progress=False)
    assert run.errors == 0
    assert (run.out / "table_image.csv").exists() and (run.out / "table_audio.csv").exists()
    kinds = {r["kind"]: r for r in ResultStore(run.out).rows()}
    assert Path(kinds["audio"]["thumbnail"]).exists() and Path(kinds["image"]["thumbnail"]).exists()
    assert (run.out / "gallery_audio.png").exists()


def test_shape_and_video_thumbnails() -> None:
    from inrkit.bench.case import generic_thumbnail
    from inrkit.signals import KINDS

    z, y, x = np.mgrid[-1:1:16j, -1:1:16j, -1:1:16j]
    sdf = (np.sqrt(x**2 + y**2 + z**2) - 0.5)[..., None]
    render = KINDS["sdf"].thumbnail(sdf)
    assert render.shape == (16, 16, 1) and render[8, 8, 0] > 0.5 and render[0, 0, 0] == 0
    assert generic_thumbnail(np.random.rand(5, 8, 8, 3)).shape == (8, 8, 3)  # a video's middle frame
    assert KINDS["audio"].thumbnail(np.zeros((1, 1))) is None


@pytest.mark.slow
def test_ray_executor_runs_the_same_grid(signals: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    run = run_benchmark({"signals": [str(signals / "img0.png")], "models": ["siren", "ffn"], "seeds": [0],
                         "steps": 5, "device": "cpu", "executor": "ray", "out": str(tmp_path / "r")}, progress=False)
    assert run.total == 2 and run.errors == 0 and ResultStore(run.out).count() == 2


def test_a_custom_runner_interrupted_after_one_case_resumes_with_only_the_missing_ones(tmp_path: Path) -> None:
    from inrkit.bench import ModelSpec, register_runner, run_cases
    from inrkit.bench.spec import make_case

    calls: list[int] = []

    @register_runner("test_square")
    def square(case, context):
        if case.options.get("stop_at") == case.options["x"] and not calls:
            raise KeyboardInterrupt  # as Ctrl-C in the middle of this case: nothing recorded for it
        calls.append(case.options["x"])
        return {"metrics": {"square": float(case.options["x"] ** 2)}, "extra": {"x": case.options["x"]}}

    def cases(stop_at=None):
        return [make_case(f"sig{x}", "image", ModelSpec("toy", "toy"), runner="test_square",
                          options={"x": x, **({"stop_at": stop_at} if stop_at else {})}) for x in (1, 2, 3)]

    spec = {"out": str(tmp_path / "b"), "device": "cpu"}
    first = run_cases(cases()[:1], spec, progress=False, report=False)
    assert (first.total, first.ran, calls) == (1, 1, [1])
    with pytest.raises(KeyboardInterrupt):  # the second case is interrupted: the first stays recorded
        calls.clear()
        run_cases([cases()[0], *cases(stop_at=2)[1:]], spec, progress=False, report=False)
    assert ResultStore(tmp_path / "b").count() == 1
    calls.clear()
    resumed = run_cases(cases(), spec, progress=False, report=False)
    assert (resumed.total, resumed.ran, resumed.errors, calls) == (3, 2, 0, [2, 3])
    assert [r["extra"]["x"] for r in resumed.rows()] == [1, 2, 3]
    assert [r["metrics"]["square"] for r in resumed.rows()] == [1.0, 4.0, 9.0]


def test_per_model_budget_and_fit_settings_and_stable_hashes(signals: Path) -> None:
    from inrkit.bench import make_spec
    from inrkit.bench.spec import config_hash

    spec = make_spec({"signals": [str(signals / "img0.png")], "steps": 9, "params": "2k", "image": {"crop": 12},
                      "model": [{"name": "siren"}, {"name": "ffn", "label": "big ffn", "params": "3k",
                                                     "fit": {"lr": 1e-3, "steps": 4}}]})
    plain, custom = resolve(spec)
    assert (plain.params, plain.fit, custom.params, custom.fit) == (2000, {"steps": 9}, 3000, {"steps": 4, "lr": 1e-3})
    assert custom.model.label == "big ffn" and custom.config_hash != plain.config_hash
    # a plain fit case hashes as it always has, so stores written before runners existed still resume
    assert plain.config_hash == config_hash({"model": "siren", "overrides": {}, "params": 2000, "fit": {"steps": 9},
                                             "load": {"crop": 12}, "kind": "image"})
    with pytest.raises(inrkit.ConfigError, match="unknown fit setting"):
        resolve(make_spec({"signals": [str(signals)], "models": [{"name": "siren", "fit": {"lrr": 1}}]}))
    with pytest.raises(inrkit.ConfigError, match="unknown case runner 'nope'"):
        run_benchmark({"signals": [str(signals)], "runner": "nope", "out": "/nonexistent/never"}, progress=False)
    forced = resolve(make_spec({"signals": [str(signals / "img0.png")], "kind": "image"}))
    assert forced[0].kind == "image"
    # a model that names its own budget (epochs) replaces the spec's steps instead of clashing with it
    by_epochs = resolve(make_spec({"signals": [str(signals / "img0.png")], "steps": 9,
                                   "model": [{"name": "siren", "fit": {"epochs": 3, "batch_size": 64}}]}))
    assert by_epochs[0].fit == {"epochs": 3, "batch_size": 64}
    per_kind = resolve(make_spec({"signals": [str(signals / "img0.png")], "steps": 9, "image": {"epochs": 2}}))
    assert per_kind[0].fit == {"epochs": 2}


def test_equal_budget_section_reads_histories_at_the_common_budget() -> None:
    from inrkit.bench.budgets import equal_budget_section

    fast = {"model": "a", "history": [[1, 0.1, 20.0, 1.0, 100], [2, 0.1, 30.0, 2.0, 200]]}
    slow = {"model": "b", "history": [[1, 0.1, 25.0, 3.0, 50], [2, 0.1, 35.0, 6.0, 100]]}
    text = "\n".join(equal_budget_section([fast, slow]))
    assert "at 2 seconds" in text and "at 100 samples" in text
    assert "| a | 30.00 | 20.00 |" in text  # a at 2 s: 30 dB; at 100 samples: 20 dB
    assert "| b | – | 35.00 |" in text  # b had nothing by 2 s


def test_batched_bench_gives_each_case_the_row_a_single_fit_gives(signals: Path, uninterrupted: Path,
                                                                  tmp_path: Path) -> None:
    """--batched trains the cases that differ only in signal and seed together (fit_many); every row is
    the one `fit` gives, up to float summation order, with its seconds shared out and marked."""
    out = tmp_path / "batched"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = CliRunner().invoke(app, [*bench_args(signals, out), "--batched"])
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    alone = {(r["signal_name"], r["model"], r["seed"]): r for r in ResultStore(uninterrupted).rows()}
    together = ResultStore(out).rows()
    assert len(together) == len(alone) == 18 and all(r["status"] == "ok" for r in together)
    for row in together:
        single = alone[(row["signal_name"], row["model"], row["seed"])]
        assert row["config_hash"] == single["config_hash"]  # the same cases: stores stay interchangeable
        assert row["metrics"]["psnr"] == pytest.approx(single["metrics"]["psnr"], abs=0.01)  # float order only
        assert row["extra"]["batched"]["members"] == 6  # 3 images x 2 seeds per model
        assert (Path(out) / "thumbs").is_dir() and row["thumbnail"]
    with pytest.raises(inrkit.ConfigError, match="batched must be"):
        from inrkit.bench import make_spec

        make_spec({"signals": [str(signals)], "batched": "sometimes"})


def test_a_second_bench_on_the_same_folder_stops_with_one_line_while_the_first_runs(signals: Path,
                                                                                    tmp_path: Path) -> None:
    import fcntl

    out = tmp_path / "b"
    spec = {"signals": [str(signals / "img0.png")], "models": ["siren"], "seeds": [0], "steps": 2,
            "device": "cpu", "out": str(out)}
    out.mkdir()
    with open(out / ".bench.lock", "a") as first:  # what a running bench holds (flock is per open file)
        fcntl.flock(first, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = CliRunner().invoke(app, ["bench", "--signals", str(signals / "img0.png"), "--models", "siren",
                                          "--steps", "2", "--out", str(out)])
        assert result.exit_code == 2 and "another inrkit bench is writing there" in result.output, result.output
        assert not (out / ResultStore.FILENAME).exists()  # nothing written by the refused run
    assert run_benchmark(spec, progress=False, report=False).ran == 1  # free again once the first ends
