"""Bad bench inputs end in one line and exit 2; a results store that is not ours is never changed; a store
killed mid-write keeps every committed row."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from typer.testing import CliRunner

from inrkit.bench import BenchSpec, ResultStore
from inrkit.bench.spec_check import FIELDS
from inrkit.bench.store import SCHEMA
from inrkit.cli import app


def one_line_exit_2(args: list[str], *expected: str) -> str:
    result = CliRunner().invoke(app, args)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "Traceback" not in result.output and all(e in lines[0] for e in expected), lines[0]
    return lines[0]


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "img.png"
    iio.imwrite(path, np.full((8, 8, 3), 128, np.uint8))
    return path


@pytest.mark.parametrize(("text", "expected"), [
    (b'signals = ["caf\xe9.png"]\n', ["byte 0xe9 at offset 15 is not UTF-8"]),
    (b'signals = "IMG"\n', ["signals must be a list of strings", "got a string '"]),
    (b'signals = ["IMG"]\nmodels = "siren"\n', ["models must be a list", "got a string 'siren'"]),
    (b'signals = ["IMG"]\nsteps = "3"\n', ["steps must be an integer; got a string '3'"]),
    (b'signals = ["IMG"]\nseeds = [0, "1"]\n', ["seeds must be a list of integers"]),
    (b'signals = ["IMG"]\nisolate = 1\n', ["isolate must be true or false; got an integer 1"]),
    (b'signals = ["IMG"]\nparams = [1]\n', ["params must be a finite count"]),
    (b'signals = ["IMG"]\nparams = nan\n', ["params must be a finite count", "got a number nan"]),
    (b'signals = ["IMG"]\nparams = "inf"\n', ["params must be a finite count", "got 'inf'"]),
    (b'signals = ["IMG"]\nparams = -5\n', ["params must be a positive count"]),
    (b'signals = ["IMG"]\ntarget_psnr = inf\n', ["target_psnr must be a finite number"]),
    (b'signals = ["IMG"]\nseeds = [-1]\n', ["seeds must be a non-empty list of integers from 0"]),
    (b'signals = ["IMG"]\nstepz = 3\n', ["unknown bench setting 'stepz' (did you mean 'steps'?)"]),
    (b'signals = ["IMG"]\n[imgae]\ncrop = 4\n', ["unknown signal kind 'imgae' (did you mean 'image'?)"]),
    (b'signals = ["IMG"]\n[image]\ncorp = 4\n', ["unknown [image] setting 'corp' (did you mean 'crop'?)"]),
    (b'signals = ["IMG"]\n[[model]]\nname = "siren"\nparams = [3]\n', ["params must be a finite count"]),
], ids=["not-utf8", "signals-string", "models-string", "steps-string", "seed-string", "bool-int", "params-list",
        "params-nan", "params-inf-text", "params-negative", "target-inf", "seed-negative", "unknown-key",
        "unknown-kind", "unknown-kind-key", "model-params"])
def test_a_bad_spec_is_one_line_naming_the_file(text: bytes, expected: list[str], image: Path,
                                                 tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_bytes(text.replace(b"IMG", str(image).encode()))
    line = one_line_exit_2(["bench", str(spec), "--out", str(tmp_path / "out"), "--quiet"], *expected)
    assert line.startswith(f"error: {spec}: ")
    assert not (tmp_path / "out").exists(), "nothing is written for a refused spec"


def test_a_json_spec_that_is_not_an_object_and_a_set_for_no_kind(image: Path, tmp_path: Path) -> None:
    (tmp_path / "spec.json").write_text("[1, 2]")
    one_line_exit_2(["bench", str(tmp_path / "spec.json")], "spec.json: a spec is a table of settings")
    one_line_exit_2(["bench", "--signals", str(image), "--set", "imgae.crop=4", "--out", str(tmp_path / "o")],
                    "unknown signal kind 'imgae' (did you mean 'image'?)")


@pytest.mark.parametrize(("name", "expected"), [("/dev/zero", "not a regular file"), (".", "a folder, not a spec"),
                                                ("deep.json", "not a valid spec (maximum recursion depth")])
def test_a_spec_that_is_a_device_a_folder_or_too_deep_is_one_line(name: str, expected: str, tmp_path: Path) -> None:
    (tmp_path / "deep.json").write_text("[" * 100_000)
    one_line_exit_2(["bench", name if name.startswith("/") else str(tmp_path / name)], expected)


def test_a_second_signal_where_the_spec_goes_says_so(image: Path) -> None:
    one_line_exit_2(["bench", "--signals", str(image), str(image)], "an image file, not a bench spec",
                    "--signals a.png,b.png")


def test_every_spec_field_has_a_type_check() -> None:
    assert set(FIELDS) == {f.name for f in dataclasses.fields(BenchSpec)}


def sqlite_file(path: Path, *statements: str) -> None:
    db = sqlite3.connect(path)
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


def a_good_store(folder: Path, rows: int = 60) -> Path:
    store = ResultStore(folder, create=True)
    for i in range(rows):
        store.add({"signal": f"s{i}", "signal_name": f"s{i}", "kind": "image", "model": "siren", "model_name": "siren",
                   "seed": 0, "config_hash": "h", "status": "ok", "metrics": {"psnr": 30.0 + i}, "params": 100,
                   "history": [[1, 0.1, 20.0, 0.5, 64]] * 40})
    sqlite_file(store.path, "PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file, to truncate it
    return store.path


def make_bad_store(how: str, folder: Path) -> None:
    folder.mkdir(parents=True)
    path = folder / ResultStore.FILENAME
    if how == "text":
        path.write_text("signal,model,psnr\nimg0,siren,30\n")
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        data = a_good_store(folder).read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif how == "foreign":
        sqlite_file(path, "CREATE TABLE users (name TEXT)", "INSERT INTO users VALUES ('ada')")
    elif how == "foreign-results":
        sqlite_file(path, "CREATE TABLE results (id INTEGER, score REAL)")
    elif how == "newer":
        sqlite_file(path, SCHEMA, "PRAGMA user_version = 99")


BAD_STORES = {"text": "not an SQLite database", "empty": "an empty file", "truncated": "damaged",
              "foreign": "without inrkit's results table (it holds users)",
              "foreign-results": "lacks inrkit's columns", "newer": "written by a newer inrkit (store schema 99"}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("how", list(BAD_STORES))
def test_report_and_run_refuse_a_store_that_is_not_ours_and_leave_it_untouched(how: str, image: Path,
                                                                               tmp_path: Path) -> None:
    folder = tmp_path / "bench"
    make_bad_store(how, folder)
    store = folder / ResultStore.FILENAME
    before = digest(store)
    one_line_exit_2(["bench", "report", str(folder)], str(store), BAD_STORES[how], "left untouched")
    assert digest(store) == before
    if how != "empty":  # an empty file is a store whose creation was killed: a run starts it afresh
        one_line_exit_2(["bench", "--signals", str(image), "--steps", "1", "--device", "cpu", "--out", str(folder),
                         "--quiet"], str(store), BAD_STORES[how])
        assert digest(store) == before and not (folder / "spec.resolved.json").exists()


def test_a_row_whose_json_fields_are_not_ours_is_refused_by_the_report(tmp_path: Path) -> None:
    path = a_good_store(tmp_path, rows=2)
    sqlite_file(path, "UPDATE results SET metrics = '[1, 2]' WHERE id = 2")
    before = digest(path)
    one_line_exit_2(["bench", "report", str(tmp_path)], str(path), "row 2: its metrics is not a JSON dict")
    assert digest(path) == before


def test_a_report_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    a_good_store(tmp_path, rows=1)
    (tmp_path / "report.md").mkdir()  # where the report goes
    one_line_exit_2(["bench", "report", str(tmp_path)], "cannot write the report there (Is a directory)")


def test_a_report_leaves_no_side_files_beside_the_store(tmp_path: Path) -> None:
    a_good_store(tmp_path, rows=3)
    before = digest(tmp_path / ResultStore.FILENAME)
    assert CliRunner().invoke(app, ["bench", "report", str(tmp_path), "--no-published"]).exit_code == 0
    assert sorted(p.name for p in tmp_path.glob("results.sqlite*")) == ["results.sqlite"]
    assert digest(tmp_path / ResultStore.FILENAME) == before


def test_a_store_from_before_schema_versions_is_read_and_extended(tmp_path: Path) -> None:
    old = SCHEMA.replace("extra TEXT NOT NULL DEFAULT '{}',", "")
    sqlite_file(tmp_path / ResultStore.FILENAME, old, "INSERT INTO results (signal, signal_name, kind, model, "
                "model_name, seed, config_hash, status, metrics) VALUES ('a', 'a', 'image', 'siren', 'siren', 0, "
                "'h', 'ok', '{\"psnr\": 20}')")
    (row,) = ResultStore(tmp_path).rows()
    assert row["metrics"] == {"psnr": 20} and row["extra"] == {}
    ResultStore(tmp_path).add({**row, "signal": "b"})
    assert ResultStore(tmp_path).count() == 2


WRITER = textwrap.dedent("""
    import sys
    from inrkit.bench import ResultStore
    store = ResultStore(sys.argv[1], create=True)
    for i in range(100000):
        store.add({"signal": f"s{i}", "signal_name": "s", "kind": "image", "model": "siren",
                   "model_name": "siren", "seed": 0, "config_hash": "h", "status": "ok",
                   "metrics": {"psnr": float(i)}, "history": [[i, 0.5, 20.0, 1.0, 64]] * 500})
        print(i + 1, flush=True)
""")


def test_sigkill_mid_write_keeps_every_committed_row(tmp_path: Path) -> None:
    """SIGKILL lands while a row is being written: the store opens, passes SQLite's check, holds each row
    that was committed before and none half-written."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    committed = 0
    for line in proc.stdout:
        committed = int(line)
        if committed >= 30:
            break
    os.kill(proc.pid, signal.SIGKILL)  # the writer is in the middle of the next rows by now
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    store = ResultStore(tmp_path)
    rows = store.rows()
    assert len(rows) >= committed  # and the ones committed between the last print and the kill
    assert [r["metrics"]["psnr"] for r in rows] == [float(i) for i in range(len(rows))]
    assert all(len(r["history"]) == 500 for r in rows)
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store.add({**rows[0], "signal": "after"})  # and a resumed run goes on writing it
    assert ResultStore(tmp_path).count() == len(rows) + 1


def test_a_ray_address_where_nothing_answers_is_one_line_in_seconds(image: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    one_line_exit_2(["bench", "--signals", str(image), "--steps", "1", "--executor", "ray", "--ray-address",
                     f"127.0.0.1:{port}", "--out", str(tmp_path / "o"), "--quiet"],
                    f"cannot connect to the Ray cluster at 127.0.0.1:{port}: nothing answers there")
    assert not (tmp_path / "o").exists()


def test_an_unknown_target_mapping_is_refused_before_anything_is_written(image: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    one_line_exit_2(["bench", "-s", str(image), "--models", "siren", "--steps", "2", "--device", "cpu", "--quiet",
                     "--set", "image.targets=percentile", "--out", str(out)],
                    "unknown targets 'percentile'; choose from range, minmax")
    assert not out.exists()
