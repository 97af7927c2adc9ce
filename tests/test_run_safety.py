"""Run folders are never mixed and never lost: refused fits touch nothing, checkpoints are only resumed
by the same fit, a lock keeps a second fit out, a kill at any moment leaves one whole run, and
`decode` never writes over an existing file unless told."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from inrkit import create_model, load_signal
from inrkit.cli import app
from inrkit.errors import ConfigError
from inrkit.export import compress, read_metadata
from inrkit.fit import FitConfig
from inrkit.publish import RunLock, recover, replace_file
from inrkit.runs import run_fit

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
TINY = ["--width", "8", "--layers", "1", "--device", "cpu", "--quiet", "--no-plots"]
# A subprocess fit of a 16x16 image, long enough to be killed mid-way, checkpointing often.
FIT_SCRIPT = """
import sys
from inrkit.fit import FitConfig
from inrkit.runs import run_fit
img, out, steps, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
run_fit(img, "siren", out=out, plots=False, model_options={"hidden_features": 16, "hidden_layers": 1},
        config=FitConfig(steps=steps, seed=seed, device="cpu", progress=False, checkpoint_every=25))
"""


@pytest.fixture
def img(tmp_path: Path) -> Path:
    path = tmp_path / "img.png"
    Image.fromarray((np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)).save(path)
    return path


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under `root` (hidden ones too) with its bytes (None for folders)."""
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes() for p in sorted(root.rglob("*"))}


def fit_cli(*argv: str) -> object:
    return runner.invoke(app, ["fit", *argv])


def quick_fit(img: Path, out: Path, steps: int = 4, seed: int = 0, width: int = 8, **kw: object) -> dict:
    run_fit(img, "siren", out=out, plots=False, model_options={"hidden_features": width, "hidden_layers": 1},
            config=FitConfig(steps=steps, seed=seed, device="cpu", progress=False, log_every=1), **kw)
    return json.loads((out / "metrics.json").read_text())


def assert_whole(run: Path) -> dict:
    """One run's files, all of them, agreeing with each other."""
    metrics = json.loads((run / "metrics.json").read_text())
    assert read_metadata(run)["extra"]["run_id"] == metrics["run_id"]
    assert (run / "history.csv").exists() and (run / "reconstruction.png").exists()
    if (run / "checkpoint.pt").exists():
        assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == metrics["steps"]
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]
    return metrics


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("argv", [
    ["--model", "nosuchnet"],
    ["--params", "0"],
    ["--checkpoint-every", "3x"],
    ["--resume"],                          # nothing to resume from
    ["--kind", "audio"],                   # the image cannot be read as sound
    ["--lr-decay", "7"],
])
@pytest.mark.parametrize("out", ["run", "new/deeper/run"])
def test_a_refused_fit_leaves_the_file_system_as_before(img: Path, tmp_path: Path, argv: list[str], out: str) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"an earlier fit's state")
    before = tree(tmp_path)
    res = fit_cli(str(img), "--out", str(tmp_path / out), *TINY, *argv)
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert tree(tmp_path) == before


@pytest.mark.parametrize("out, message", [("img.png", "is a file"), ("/proc/inrkit-run", "system folder"),
                                          (".", "holds files a fit does not write")])
def test_an_output_path_that_cannot_hold_a_run_is_refused_first(img: Path, tmp_path: Path, out: str,
                                                               message: str) -> None:
    before = tree(tmp_path)
    res = fit_cli(str(img), "--out", out if out.startswith("/") else str(tmp_path / out), *TINY)
    assert res.exit_code == 2 and message in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert tree(tmp_path) == before


def test_a_second_fit_into_the_folder_runs_its_own_steps(img: Path, tmp_path: Path) -> None:
    first = quick_fit(img, tmp_path / "run", steps=6, seed=1, width=8)
    for derived in ("render-32x32.png", "model-8bit.inrz"):  # what render and export leave beside the weights
        (tmp_path / "run" / derived).write_bytes(b"made from the first fit's weights")
    second = quick_fit(img, tmp_path / "run", steps=6, seed=2, width=12)  # adopting the first would fail: width
    assert second["steps"] == 6 and second["model_args"]["hidden_features"] == 12 and second["seed"] == 2
    assert [int(r.split(",")[0]) for r in (tmp_path / "run" / "history.csv").read_text().split()[1:]] == \
        list(range(1, 7))
    assert second["run_id"] != first["run_id"] and assert_whole(tmp_path / "run")["run_id"] == second["run_id"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.png", "run"]


def test_resume_with_another_fits_checkpoint_names_what_differs(img: Path, tmp_path: Path) -> None:
    quick_fit(img, tmp_path / "run", steps=4, width=8)
    before = tree(tmp_path)
    res = fit_cli(str(img), "--out", str(tmp_path / "run"), "--steps", "4", "--resume", *TINY[:1], "12", *TINY[2:])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert "hidden_features 8 vs 12" in res.output
    assert tree(tmp_path) == before


class Payload:
    def __reduce__(self) -> tuple:
        return (os.system, ("touch PWNED",))


@pytest.mark.parametrize("damage", ["truncated", "foreign", "pickled"])
def test_a_damaged_checkpoint_is_one_line_and_never_run(img: Path, tmp_path: Path, damage: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    quick_fit(img, tmp_path / "run", steps=4)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    if damage == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[:300])
    elif damage == "foreign":
        torch.save({"model": {}, "step": 3}, ckpt)
    else:
        torch.save({"format": "inrkit.checkpoint/1", "identity": Payload()}, ckpt)
    res = fit_cli(str(img), "--out", "run", "--steps", "4", "--resume", *TINY)
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert "checkpoint" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "PWNED").exists()


def test_a_second_fit_into_a_locked_folder_is_refused(img: Path, tmp_path: Path) -> None:
    quick_fit(img, tmp_path / "run")
    with RunLock((tmp_path / "run").resolve()):  # a fit of ours in progress
        before = tree(tmp_path)
        res = fit_cli(str(img), "--out", str(tmp_path / "run"), "--steps", "4", *TINY)
        assert res.exit_code == 2 and f"pid {os.getpid()}" in res.output, res.output
        assert tree(tmp_path) == before
    (tmp_path / ".run.lock").write_text(str(dead_pid()))  # a killed fit's lock file holds no lock
    assert fit_cli(str(img), "--out", str(tmp_path / "run"), "--steps", "4", *TINY).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.png", "run"]


def test_fit_many_into_a_locked_dataset_is_refused(img: Path, tmp_path: Path) -> None:
    with RunLock((tmp_path / "fields").resolve()):
        res = runner.invoke(app, ["fit-many", str(img), "--out", str(tmp_path / "fields"), "--steps", "2",
                                  *TINY[:4], "--device", "cpu", "--quiet"])
    assert res.exit_code == 2 and f"pid {os.getpid()}" in res.output, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.png"]


def test_checkpoint_every_takes_steps_or_seconds(img: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import inrkit.checkpoints as ckpts
    from inrkit.checkpoints import Schedule

    saved: list[int] = []
    real = ckpts.save_checkpoint
    monkeypatch.setattr(ckpts, "save_checkpoint", lambda path, ident, state: (saved.append(state["step"]),
                                                                               real(path, ident, state)))
    quick_fit(img, tmp_path / "a", steps=10)  # default: every tenth of the fit
    assert saved == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]  # the last one as the fit ends
    saved.clear()
    res = fit_cli(str(img), "--out", str(tmp_path / "b"), "--steps", "10", "--checkpoint-every", "4", *TINY)
    assert res.exit_code == 0 and saved == [4, 8, 10]
    by_time = Schedule("30s", total_steps=20, budget_seconds=None)
    assert (by_time.steps, by_time.seconds, by_time.due(19)) == (None, 30.0, False)
    default = Schedule(None, total_steps=None, budget_seconds=60)  # a time budget: a tenth of it
    assert (default.steps, default.seconds) == (None, 6.0)


def test_a_killed_writers_temporary_files_are_cleared(tmp_path: Path) -> None:
    stale = tmp_path / f".model.safetensors.{dead_pid()}.tmp"
    stale.write_bytes(b"half a file")
    replace_file(tmp_path / "model.safetensors", lambda tmp: tmp.write_bytes(b"whole"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_a_publication_killed_between_its_renames_is_undone(img: Path, tmp_path: Path) -> None:
    """The fallback path (no atomic swap): the old run moved away, the new one not yet in."""
    run = tmp_path / "run"
    old = quick_fit(img, run, seed=1)
    pid = dead_pid()
    quick_fit(img, tmp_path / "new", seed=2)
    os.replace(run, tmp_path / f".run.old-{pid}")
    os.replace(tmp_path / "new", tmp_path / f".run.partial-{pid}")
    recover(run.resolve())
    assert assert_whole(run)["run_id"] == old["run_id"]
    new = quick_fit(img, run, seed=3)
    assert assert_whole(run)["run_id"] == new["run_id"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.png", "run"]


def test_the_fallback_publication_gives_a_whole_run(img: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import inrkit.publish

    monkeypatch.setattr(inrkit.publish, "_exchange", lambda a, b: False)
    quick_fit(img, tmp_path / "run", seed=1)
    new = quick_fit(img, tmp_path / "run", seed=2)
    assert assert_whole(tmp_path / "run")["run_id"] == new["run_id"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.png", "run"]


def start_fit(img: Path, out: Path, steps: int, seed: int, cli: bool = False) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    argv = (["-m", "inrkit", "fit", str(img), "--out", str(out), "--steps", str(steps), "--seed", str(seed),
             "--checkpoint-every", "25", *TINY[:1], "16", *TINY[2:]] if cli
            else ["-c", FIT_SCRIPT, str(img), str(out), str(steps), str(seed)])
    return subprocess.Popen([sys.executable, *argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for_checkpoint(proc: subprocess.Popen, out: Path, timeout: float = 120) -> None:
    """Until the fit has written a checkpoint into its hidden folder (it is then mid-fit)."""
    end = time.monotonic() + timeout
    partial = out.parent / f".{out.name}.partial-{proc.pid}" / "checkpoint.pt"
    while not partial.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < end
        time.sleep(0.01)


def test_a_sigkill_mid_fit_keeps_the_old_run_and_the_next_fit_clears_up(img: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    old = quick_fit(img, run, seed=1)
    proc = start_fit(img, run, steps=100_000, seed=2)
    wait_for_checkpoint(proc, run)
    proc.kill()
    proc.wait()
    assert assert_whole(run)["run_id"] == old["run_id"]
    new = quick_fit(img, run, seed=3)
    assert assert_whole(run)["run_id"] == new["run_id"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.png", "run"]


def test_resume_continues_a_dead_fit_from_its_hidden_folder(img: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import inrkit.checkpoints as ckpts

    run, pid, real = tmp_path / "run", dead_pid(), ckpts.save_checkpoint
    old = quick_fit(img, run, seed=1)

    def disk_full_at_step_3(path: Path, ident: dict, state: dict) -> None:
        if state["step"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, ident, state)

    with monkeypatch.context() as m:
        m.setattr(ckpts, "save_checkpoint", disk_full_at_step_3)
        with pytest.raises(OSError):
            quick_fit(img, run, steps=6, seed=2)  # checkpoints every step (a tenth of 6)
    os.replace(tmp_path / f".run.partial-{os.getpid()}", tmp_path / f".run.partial-{pid}")  # as if killed
    assert assert_whole(run)["run_id"] == old["run_id"]
    with pytest.raises(ConfigError, match="hidden_features 8 vs 12"):  # another fit's checkpoint is not taken
        quick_fit(img, run, steps=6, seed=2, width=12, resume=True)
    saved: list[int] = []
    monkeypatch.setattr(ckpts, "save_checkpoint", lambda path, ident, state: (saved.append(state["step"]),
                                                                               real(path, ident, state)))
    assert quick_fit(img, run, steps=6, seed=2, resume=True)["steps"] == 6
    assert saved == [3, 4, 5, 6]  # continued after step 2, where the dead fit's last checkpoint was
    assert assert_whole(run)["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.png", "run"]


def test_sigterm_stops_like_ctrl_c_and_publishes(img: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = start_fit(img, run, steps=100_000, seed=2, cli=True)
    wait_for_checkpoint(proc, run)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 130
    metrics = assert_whole(run)
    assert metrics["interrupted"] and 0 < metrics["steps"] < 100_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.png", "run"]


def wait_for_start(proc: subprocess.Popen, out: Path) -> None:
    """Until the fit has made its hidden folder (or already finished)."""
    while not (out.parent / f".{out.name}.partial-{proc.pid}").exists() and proc.poll() is None:
        time.sleep(0.005)


@pytest.mark.slow
def test_sigkill_at_random_moments_always_leaves_one_whole_run(img: Path, tmp_path: Path) -> None:
    run, rng = tmp_path / "run", random.Random(16)
    proc = start_fit(img, run, steps=600, seed=0)
    wait_for_start(proc, run)
    t0 = time.monotonic()
    assert proc.wait(timeout=300) == 0
    span = time.monotonic() - t0  # fitting, writing and publishing
    kept = published = 0
    for seed in range(1, 13):
        before = assert_whole(run)["run_id"]
        proc = start_fit(img, run, steps=600, seed=seed)
        wait_for_start(proc, run)
        time.sleep(rng.uniform(0, 1.2) * span)
        proc.kill()
        proc.wait()
        after = assert_whole(run)  # the old run or the new one, whole
        kept, published = kept + (after["run_id"] == before), published + (after["run_id"] != before)
        assert after["run_id"] == before or after["seed"] == seed
    print(f"{kept} kills kept the old run, {published} found the new one published")
    final = quick_fit(img, run, steps=4, seed=99)
    assert assert_whole(run)["run_id"] == final["run_id"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.png", "run"]


# ---- decode ------------------------------------------------------------------------------------

def test_decode_never_overwrites_a_file_unless_forced(img: Path, tmp_path: Path, tiny_rgb: np.ndarray) -> None:
    model = create_model("siren", signal=load_signal(tiny_rgb), hidden_features=8, hidden_layers=1)
    compress(model, tmp_path / "img.inrz", bits=8)
    original = img.read_bytes()
    res = runner.invoke(app, ["decode", str(tmp_path / "img.inrz"), "--device", "cpu"])
    assert res.exit_code == 2 and "img.png exists" in res.output and "--force" in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1 and img.read_bytes() == original
    res = runner.invoke(app, ["decode", str(tmp_path / "img.inrz"), "--device", "cpu", "--force"])
    assert res.exit_code == 0 and img.read_bytes() != original
