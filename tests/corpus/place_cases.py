"""Paths (missing, a folder for a file, a file for a folder, under /proc, unwritable, beside a file a
command could overwrite), bench specs and stores, and --resume with foreign or damaged checkpoints."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from . import files
from .cases import Case
from .workspace import FIT, Profile

NOISE = bytes(range(256)) * 8
FIT_OUT = [*FIT, "--out", "out"]
BENCH = ["-m", "siren:hidden_features=8", "--steps", "1", "--device", "cpu", "--quiet"]
PROC = "/proc/inrkit-corpus"


def unwritable(folder: Path, ws: Any) -> None:
    """A folder nobody may write into: read-only for a normal user; root writes anywhere but /sys."""
    if os.geteuid() != 0:
        (folder / "ro").mkdir()
        (folder / "ro").chmod(0o500)


def unwritable_path() -> str:
    return "ro/run" if os.geteuid() != 0 else "/sys/inrkit-corpus/run"


def _file(name: str, data: bytes = b"precious\n") -> Any:
    def make(folder: Path, ws: Any) -> None:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return make


def _dir(name: str) -> Any:
    return lambda folder, ws: (folder / name).mkdir(parents=True)


def _both(*makers: Any) -> Any:
    def make(folder: Path, ws: Any) -> None:
        for maker in makers:
            maker(folder, ws)
    return make


def _shape_is(run: str, shape: list[int]) -> Any:
    """The run's weights describe a signal of this shape and its metrics file exists."""
    def verify(folder: Path, result: Any) -> list[str]:
        from inrkit.export.weights import read_metadata

        found = read_metadata(folder / run / "model.safetensors")["signal"]["shape"]
        problems = [] if found == shape else [f"{run}/model.safetensors is of a {found} signal, the fit's is {shape}"]
        return problems + ([] if (folder / run / "metrics.json").exists() else [f"no {run}/metrics.json"])
    return verify


def path_cases(profile: Profile) -> list[Case]:
    img, run = ("img.png",), ("run_image",)
    c = Case
    return [
        c("path/signal-missing/fit", ["fit", "missing.png", *FIT_OUT]),
        c("path/out-is-a-file/fit", ["fit", "img.png", *FIT_OUT], needs=img, make=_file("out")),
        c("path/out-under-a-file/fit", ["fit", "img.png", *FIT, "--out", "img.png/run"], needs=img),
        c("path/out-under-proc/fit", ["fit", "img.png", *FIT, "--out", PROC], needs=img),
        c("path/out-unwritable/fit", ["fit", "img.png", *FIT, "--out", unwritable_path()], needs=img,
          make=unwritable),
        c("path/out-in-missing-folders/fit", ["fit", "img.png", *FIT, "--out", "a/b/c/run"], needs=img,
          may_succeed=True),
        c("path/out-is-the-working-folder/fit", ["fit", "img.png", *FIT, "--out", "."], needs=img, may_succeed=True),
        c("path/out-holds-other-files/fit", ["fit", "img.png", *FIT_OUT], needs=img, make=_file("out/notes.txt"),
          may_succeed=True),
        c("path/init-missing/fit", ["fit", "img.png", *FIT_OUT, "--init", "missing.safetensors"], needs=img),
        c("path/init-is-a-folder/fit", ["fit", "img.png", *FIT_OUT, "--init", "sigs"], needs=("img.png", "sigs")),
        c("path/run-missing/render", ["render", "missing_run", "--out", "r.png"]),
        c("path/run-is-a-png/render", ["render", "img.png", "--out", "r.png"], needs=img),
        c("path/folder-without-weights/render", ["render", "sigs", "--out", "r.png"], needs=("sigs",)),
        c("path/out-is-a-folder/render", ["render", "run_image", "--out", "outdir"], needs=run, make=_dir("outdir")),
        c("path/out-under-proc/render", ["render", "run_image", "--out", PROC + ".png"], needs=run),
        c("path/out-under-a-file/render", ["render", "run_image", "--out", "img.png/r.png"], needs=("run_image",
                                                                                                     "img.png")),
        c("path/out-in-a-missing-folder/render", ["render", "run_image", "--out", "missing/r.png"], needs=run,
          may_succeed=True),
        c("path/out-suffix-xyz/render", ["render", "run_image", "--out", "r.xyz"], needs=run, may_succeed=True),
        c("path/out-suffix-wav-for-an-image/render", ["render", "run_image", "--out", "r.wav"], needs=run,
          may_succeed=True),
        c("path/out-suffix-unknown/render", ["render", "run_image", "--out", "r.qqq"], needs=run, may_succeed=True),
        c("path/weights-missing/export", ["export", "missing_run", "--out", "m.inrz", "--quiet"]),
        c("path/out-is-a-folder/export", ["export", "run_image", "--out", "outdir", "--quiet"], needs=run,
          make=_dir("outdir")),
        c("path/out-under-proc/export", ["export", "run_image", "--out", PROC + ".inrz", "--quiet"], needs=run),
        c("path/out-suffix-png/export", ["export", "run_image", "--out", "m.png", "--quiet"], needs=run,
          may_succeed=True),
        c("path/file-missing/decode", ["decode", "missing.inrz", "--out", "d.png"]),
        c("path/file-is-a-folder/decode", ["decode", "sigs", "--out", "d.png"], needs=("sigs",)),
        c("path/out-is-a-folder/decode", ["decode", "model.inrz", "--out", "outdir"], needs=("model.inrz",),
          make=_dir("outdir")),
        c("path/out-under-proc/decode", ["decode", "model.inrz", "--out", PROC + ".png"], needs=("model.inrz",)),
        c("path/beside-the-original/decode", ["decode", "model.inrz"], needs=("model.inrz",),
          make=lambda folder, ws: shutil.copy(ws.base / "img.png", folder / "model.png"), may_succeed=True),
        # an explicit --out naming a file is the user's choice (the check is that it then holds a PNG)
        c("path/out-is-an-existing-file/decode", ["decode", "model.inrz", "--out", "img.png"],
          needs=("model.inrz", "img.png"), may_succeed=True, writes=("img.png",)),
        c("path/signal-missing/eval", ["eval", "run_image", "missing.png"], needs=run),
        c("path/signal-is-a-folder/eval", ["eval", "run_image", "sigs"], needs=("run_image", "sigs")),
        c("path/run-missing/eval", ["eval", "missing_run", "img.png"], needs=img),
        c("path/source-missing/fit-many", ["fit-many", "missing", "--steps", "1", "--out", "fields"]),
        c("path/source-empty/fit-many", ["fit-many", "empty", "--steps", "1", "--out", "fields"], make=_dir("empty")),
        c("path/glob-matches-nothing/fit-many", ["fit-many", "nothing*.png", "--steps", "1", "--out", "fields"]),
        c("path/out-is-a-file/fit-many", ["fit-many", "sigs", "--steps", "1", "--width", "8", "--device", "cpu",
                                          "--quiet", "--out", "fields"], needs=("sigs",), make=_file("fields")),
        c("path/out-under-proc/fit-many", ["fit-many", "sigs", "--steps", "1", "--width", "8", "--device", "cpu",
                                           "--quiet", "--out", PROC], needs=("sigs",)),
        c("path/source-missing/meta-learn", ["meta-learn", "missing", "--outer-steps", "1", "--out", "i.safetensors"]),
        c("path/out-is-a-folder/meta-learn", ["meta-learn", "sigs", "--outer-steps", "1", "--inner-steps", "1",
                                              "--meta-batch", "1", "--width", "8", "--device", "cpu", "--quiet",
                                              "--out", "outdir"], needs=("sigs",), make=_dir("outdir")),
        c("path/out-under-proc/meta-learn", ["meta-learn", "sigs", "--outer-steps", "1", "--inner-steps", "1",
                                             "--meta-batch", "1", "--width", "8", "--device", "cpu", "--quiet",
                                             "--out", PROC + ".safetensors"], needs=("sigs",)),
        c("path/image-missing/rd", ["rd", "missing.png", "--steps", "1", "--out", "rd"]),
        c("path/out-is-a-file/rd", ["rd", "img.png", "--params", "1k", "--bits", "8", "--steps", "1", "--device",
                                    "cpu", "--quiet", "--out", "rd"], needs=img, make=_file("rd")),
        c("path/out-under-proc/rd", ["rd", "img.png", "--params", "1k", "--bits", "8", "--steps", "1", "--device",
                                     "cpu", "--quiet", "--out", PROC], needs=img),
        c("path/signal-missing/bench", ["bench", "-s", "missing.png", *BENCH, "--out", "bench"]),
        c("path/out-is-a-file/bench", ["bench", "-s", "img.png", *BENCH, "--out", "bench"], needs=img,
          make=_file("bench")),
        c("path/out-under-proc/bench", ["bench", "-s", "img.png", *BENCH, "--out", PROC], needs=img),
        c("path/folder-missing/bench-report", ["bench", "report", "missing"]),
        c("path/folder-is-a-file/bench-report", ["bench", "report", "img.png"], needs=img),
        c("path/folder-empty/bench-report", ["bench", "report", "empty"], make=_dir("empty")),
        c("path/pattern-unbalanced/models", ["models", "[siren"]),
    ]


# ---- bench specs and stores -----------------------------------------------------------------

SPEC = {"signals": '["img.png"]', "models": '["siren:hidden_features=8"]', "steps": "1", "device": '"cpu"',
        "out": '"bench"'}


def _spec(tables: str = "", raw: bytes | None = None, **keys: str | None) -> Any:
    """A spec.toml: the base keys with these replaced (None drops one), then `tables` text."""
    def make(folder: Path, ws: Any) -> None:
        if raw is not None:
            (folder / "spec.toml").write_bytes(raw)
            return
        merged = {k: v for k, v in {**SPEC, **keys}.items() if v is not None}
        (folder / "spec.toml").write_text("".join(f"{k} = {v}\n" for k, v in merged.items()) + tables)
    return make


def spec_inputs() -> list[tuple[str, Any]]:
    deep = "signals = " + "[" * 5000 + "]" * 5000 + "\n"
    return [
        ("not-utf8", _spec(raw=b"\xff\xfe signals = ['img.png']\n")),
        ("not-toml", _spec(raw=b"signals = [\n")),
        ("png-bytes", lambda folder, ws: shutil.copy(ws.base / "img.png", folder / "spec.toml")),
        ("empty", _spec(raw=b"")),
        ("signals-a-string", _spec(signals='"img.png"')),
        ("signals-a-number", _spec(signals="5")),
        ("signals-missing-file", _spec(signals='["missing.png"]')),
        ("signals-nested-5000-deep", _spec(raw=deep.encode())),
        ("signal-name-5000-long", _spec(signals='["' + "x" * 5000 + '.png"]')),
        ("models-a-number", _spec(models="3")),
        ("models-unknown", _spec(models='["nosuchnet"]')),
        ("seeds-a-string", _spec(tables="", seeds='"x"')),
        ("seeds-negative", _spec(seeds="[-1]")),
        ("seeds-fractional", _spec(seeds="[0.5]")),
        ("steps-negative", _spec(steps="-1")),
        ("steps-a-string", _spec(steps='"ten"')),
        ("params-1e12", _spec(params="1e12")),
        ("params-nan", _spec(params="nan")),
        ("target-psnr-nan", _spec(target_psnr="nan")),
        ("workers-zero", _spec(workers="0")),
        ("workers-100000", _spec(workers="100000")),  # may start no more workers than cases
        ("kinds-a-string", _spec(kinds='"x"')),
        ("kind-lr-nan", _spec(tables="[kinds.image]\nlr = nan\n")),
        ("kind-crop-negative", _spec(tables="[kinds.image]\ncrop = -1\n")),
        ("kind-crop-huge", _spec(tables="[kinds.image]\ncrop = 100000\n")),
        ("unknown-key", _spec(bogus="1")),
        ("out-a-number", _spec(out="5")),
        ("executor-unknown", _spec(executor='"spark"')),
        ("device-unknown", _spec(device='"tpu"')),
        ("spec-is-a-folder", _dir("spec.toml")),
    ]


def _store(edit: Any) -> Any:
    def make(folder: Path, ws: Any) -> None:
        edit(folder / "bench_ok" / "results.sqlite")
    return make


def _every_column(value: Any) -> Any:
    def edit(path: Path) -> None:
        import sqlite3

        with sqlite3.connect(path) as db:
            for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
                for row in db.execute(f"PRAGMA table_info('{table}')").fetchall():
                    try:  # a typed key column refuses some values; the others still take them
                        db.execute(f"UPDATE '{table}' SET '{row[1]}' = ?", [value])
                    except sqlite3.Error:
                        pass
    return edit


def store_inputs() -> list[tuple[str, Any]]:
    def replace(data: bytes) -> Any:
        return lambda path: path.write_bytes(data)

    def folder(path: Path) -> None:
        path.unlink()
        path.mkdir()

    return [
        ("noise", replace(NOISE)),
        ("empty", replace(b"")),
        ("truncated", lambda path: path.write_bytes(path.read_bytes()[:1024])),
        ("foreign-database", lambda path: (path.unlink(), files.foreign_sqlite(path))),
        ("text-in-every-column", _every_column("zzz")),
        ("null-in-every-column", _every_column(None)),
        ("blob-in-every-column", _every_column(b"\x00\xff")),
        ("a-folder", folder),
    ]


def bench_cases(profile: Profile) -> list[Case]:
    usable = {"workers-100000"}
    cases = [Case(f"bench-spec/{label}/bench", ["bench", "spec.toml", "--quiet"], needs=("img.png",), make=make,
                  may_succeed=label in usable, costly=label in usable) for label, make in spec_inputs()]
    cases.append(Case("bench-spec/valid/bench", ["bench", "spec.toml", "--quiet"], needs=("img.png",), make=_spec(),
                      may_succeed=True, costly=True))
    for label, edit in store_inputs():
        # a 0-byte file is a valid empty SQLite database: a run may start in it; NULL lands only in the
        # columns the schema leaves optional (error, params, steps, ...), so those rows are still readable
        usable = label in ("empty", "null-in-every-column")
        cases.append(Case(f"bench-store/{label}/report", ["bench", "report", "bench_ok"], needs=("bench_ok",),
                          make=_store(edit), writes=("bench_ok",), may_succeed=label == "null-in-every-column"))
        cases.append(Case(f"bench-store/{label}/resume", ["bench", "-s", "img.png", *BENCH, "--out", "bench_ok"],
                          needs=("bench_ok", "img.png"), make=_store(edit), writes=("bench_ok",), may_succeed=usable,
                          costly=usable))
    return cases


# ---- --resume -------------------------------------------------------------------------------

def _checkpoint(data: Any) -> Any:
    def make(folder: Path, ws: Any) -> None:
        target = folder / "run" / "checkpoint.pt"
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        data(target, ws)
    return make


def _copy_run(folder: Path, ws: Any) -> None:
    ws.copy("run_image", folder, as_name="run")


def resume_cases(profile: Profile) -> list[Case]:
    resume = ["fit", "img.png", *FIT, "--out", "run", "--resume"]
    checkpoints = {
        "truncated": lambda p, ws: p.write_bytes((ws.base / "run_image" / "checkpoint.pt").read_bytes()[:100]
                                                  if (ws.base / "run_image" / "checkpoint.pt").exists() else b"PK"),
        "noise": lambda p, ws: p.write_bytes(NOISE),
        "empty": lambda p, ws: p.write_bytes(b""),
        "pickle-payload": lambda p, ws: files.pickled_torch(p),
        "a-folder": lambda p, ws: p.mkdir(),
        "of-an-audio-fit": lambda p, ws: shutil.copy(ws.base / "run_audio" / "checkpoint.pt", p)
        if (ws.base / "run_audio" / "checkpoint.pt").exists() else p.write_bytes(b""),
        "absent": lambda p, ws: None,
    }
    cases = [Case(f"resume/checkpoint-{label}/fit", resume, needs=("img.png",),
                  make=_both(_copy_run, _checkpoint(make))) for label, make in checkpoints.items()]
    with_run = dict(needs=("img.png",), make=_copy_run)
    cases += [
        Case("resume/other-width/fit", [*resume, "--width", "16"], **with_run),
        Case("resume/other-model/fit", [*resume, "--model", "ffn"], **with_run),
        Case("resume/other-seed/fit", [*resume, "--seed", "1"], may_succeed=True, writes=("run",), **with_run),
        Case("resume/other-image/fit", ["fit", "img20.png", *FIT, "--out", "run", "--resume"],
             needs=("img.png", "img20.png"), make=_copy_run),
        Case("resume/no-run-folder/fit", ["fit", "img.png", *FIT, "--out", "nothing", "--resume"], needs=("img.png",)),
        Case("resume/same-fit/fit", resume, may_succeed=True, writes=("run",), costly=True, **with_run),
        # without --resume, an old run folder is replaced whole by the new fit, never mixed with it
        Case("resume/new-fit-into-an-old-run/fit", ["fit", "img20.png", *FIT, "--out", "run"],
             needs=("img.png", "img20.png"), make=_copy_run, may_succeed=True, writes=("run",),
             verify=_shape_is("run", [20, 20]), costly=True),
        Case("resume/bad-model-into-an-old-run/fit", ["fit", "img.png", *FIT, "--model", "nosuchnet", "--out", "run"],
             **with_run),
    ]
    return cases
