"""A fit as a run directory: what `inrkit fit` writes, and what `render`/`eval`/`export` read back.

run/
  model.safetensors   self-describing weights          metrics.json   final metrics + provenance
  reconstruction.*    the fitted signal (png/wav/...)  history.csv    step, loss, psnr, seconds
  curve.png           PSNR over steps                  comparison.png original vs fit
  checkpoint.pt       resumable training state

A run is written whole or not at all (see `inrkit.publish`): beside `run/` a fit keeps only a lock
file `.run.lock` while it runs, and after a kill a hidden `.run.partial-<pid>` that `--resume`
continues from and the next fit into the same place clears.
"""

from __future__ import annotations

import csv
import inspect
import json
import math
import platform
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from . import checkpoints
from ._version import __version__
from .errors import ConfigError, InrkitError
from .export import save
from .fit import FitConfig, FitResult, fit, resolve_config
from .inference import render, write_reconstruction
from .inits import apply_init, resolve_init
from .loggers import make_logger
from .models import create_model
from .provenance import provenance as run_provenance
from .publish import RunLock, check_target, leftovers, publish, recover, staging, stops_deferred, stops_interrupt
from .signals import Signal, get_kind, load_signal
from .utils import count_params, parse_count, resolve_device, seed_everything

RUN_FILES = frozenset({"model.safetensors", "metrics.json", "history.csv", "history.live.csv", "curve.png",
                       "comparison.png", "checkpoint.pt", "checkpoint.pt.tmp", "tensorboard"})


def default_run_dir(signal_name: str, model: str, root: str | Path = "runs") -> Path:
    return Path(root) / f"{signal_name}-{model}-{time.strftime('%Y%m%d-%H%M%S')}"


def prepare_out_dir(path: str | Path) -> Path:
    """Create the output folder and prove it is writable before any long work starts."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{path}: output folder is not writable ({exc.strerror or exc})") from exc
    return path


def run_fit(source: str | Path | Signal, model: str = "siren", *, out: str | Path | None = None,
            config: FitConfig | None = None, params: int | str | None = None, kind: str | None = None,
            resume: bool = False, signal_options: dict[str, Any] | None = None,
            model_options: dict[str, Any] | None = None, checkpoint: bool = True,
            plots: bool = True, log: Sequence[str] = (), init: Any = None) -> tuple[FitResult, Path]:
    """Load a signal, fit a backbone and write a complete run directory; returns the result and the folder.

    Everything is checked before `out` is touched, so a refused fit changes nothing. The run is written
    into a hidden sibling folder and swapped into place whole at the end (also after Ctrl-C or SIGTERM,
    which stop and keep what was learnt); a kill at any moment leaves the previous run or the new one,
    never a mix. A lock keeps a second fit out of the same folder. `resume=True` continues from the
    checkpoint of the same fit (model, signal, settings) found there; a fit never reads one otherwise.

    `checkpoint=False` keeps no resumable checkpoint.pt (a lean folder; Ctrl-C still saves the weights);
    `plots=False` skips curve.png and comparison.png. `log` names live loggers on the fit's callback
    ("csv": history.live.csv row by row; "tensorboard": events under tensorboard/, see `inrkit.loggers`);
    while the fit runs they live in the hidden folder `.<out>.partial-<pid>`.
    `init` is a weights file (e.g. from `inrkit meta-learn`) of the same backbone and size to start from.

    Example:
        >>> result, run = run_fit("data/astronaut.png", "siren", config=FitConfig(steps=300))  # doctest: +SKIP
        >>> (run / "model.safetensors").exists()  # doctest: +SKIP
        True
    """
    config = config or FitConfig()
    if resume and not checkpoint:
        raise ConfigError("--resume needs the checkpoint that --no-checkpoint leaves out")
    resolve_device(config.device)  # fail on a bad device before loading anything
    if out is not None:
        check_target(out, is_run_file)  # a bad --out fails before the signal is loaded
    signal = source if isinstance(source, Signal) else load_signal(source, kind, **(signal_options or {}))
    seed_everything(config.seed)
    net = create_model(model, signal=signal, params=parse_count(params), recipe=config.recipe or "authors",
                       **(model_options or {}))
    if init is not None:
        apply_init(net, resolve_init(init))
    out = Path(out or default_run_dir(signal.name, model))
    target = check_target(out, is_run_file)
    with RunLock(target):
        recover(target)
        start = resume_point(target, net, signal, config) if resume else None
        with staging(target) as work:
            config = replace(config, checkpoint_path=str(work / "checkpoint.pt") if checkpoint else None)
            result = _fit_logged(net, signal, config, start, log, work)
            with stops_deferred():  # a stop now would leave a half-written run unpublished
                write_run(result, signal, work, plots=plots, run_id=uuid.uuid4().hex[:12])
                publish(work, target)
    return result, out


def _fit_logged(net: Any, signal: Signal, config: FitConfig, start: Path | None, log: Sequence[str],
                work: Path) -> FitResult:
    """fit() with live loggers writing into `work`; SIGTERM stops it like Ctrl-C."""
    logger = make_logger(log, work, net, signal, config.steps) if log else None
    try:
        with stops_interrupt():
            return fit(net, signal, config, callback=logger, resume=start)
    finally:
        if logger is not None:
            logger.close()


def is_run_file(name: str) -> bool:
    """Whether a run folder entry is one inrkit writes there (so replacing the folder loses nothing else).

    That is the fit's own files, what `render` and `export`/`decode` write beside the weights by default
    (render-*, model-*: made from the old weights, they would not match the new ones) and the
    temporaries of killed writers.
    """
    scraps = name == ".write-test" or name.startswith(".tmp") or (name.startswith(".") and name.endswith(".tmp"))
    derived = name.startswith(("reconstruction.", "render-", "model-"))
    return name in RUN_FILES or derived or scraps


def resume_point(target: Path, net: Any, signal: Signal, config: FitConfig) -> Path:
    """The newest checkpoint of this same fit in the run folder or left by a killed fit beside it.

    With none, or only another fit's, the error names the folder or what differs.
    """
    candidates = [p / "checkpoint.pt" for p in [*leftovers(target, "partial"), target]]
    candidates = sorted((p for p in candidates if p.exists()), key=lambda p: p.stat().st_mtime, reverse=True)
    if not candidates:
        raise ConfigError(f"{target}: no checkpoint to resume from (run without --resume to start afresh)")
    wanted = checkpoints.identity(net, signal, asdict(resolve_config(config, net, signal)))
    errors = []
    for path in candidates:
        try:
            checkpoints.read_checkpoint(path, wanted, mmap=True)
            return path
        except InrkitError as exc:
            errors.append(exc)
    raise errors[0]


def provenance(result: FitResult, signal: Signal) -> dict[str, Any]:
    """Everything needed to judge and reproduce a number: recipe, seed, device, versions, and where it came
    from (git commit and whether the checkout was dirty, command line, CPU/GPU model, signal file sha256)."""
    info = result.model.model_info
    return {"model": info.name, "model_args": info.kwargs, "signal": signal.name, "kind": signal.kind,
            "shape": list(signal.shape), "params": count_params(result.model),
            "steps": result.steps, "seconds": round(result.seconds, 3), "time_to_target": result.time_to_target,
            "interrupted": result.interrupted, "seed": result.config["seed"],
            "lr": result.config["lr"], "lr_decay": result.config["lr_decay"],
            "batch_size": result.config["batch_size"], "recipe": result.config["recipe"],
            "sampler": result.config["sampler"], "precision": result.config["precision"], "loss": info.loss,
            "device": str(next(result.model.parameters()).device), "torch": torch.__version__,
            "inrkit": __version__, "python": platform.python_version(),
            **run_provenance(signal.meta.get("source"), str(next(result.model.parameters()).device))}


def write_run(result: FitResult, signal: Signal, out: Path, plots: bool = True,
              run_id: str | None = None) -> dict[str, Any]:
    """Write weights, metrics, history, reconstruction and (with `plots`) curve and comparison into `out`.

    `run_id`, when given, is written into both metrics.json and the weights' metadata, so a reader can
    tell that they come from the same run.
    """
    kind = get_kind(signal.kind)
    record = {**_finite(result.metrics), **provenance(result, signal), **({"run_id": run_id} if run_id else {})}
    save(result.model, out / "model.safetensors", signal_info=signal.info,
         extra={"metrics": _finite(result.metrics), **({"run_id": run_id} if run_id else {})})
    (out / "metrics.json").write_text(json.dumps(record, indent=2) + "\n")
    write_history(result.history, out / "history.csv")
    if plots:
        plot_curve(result.history, out / "curve.png", title=f"{record['model']} on {signal.name}")
    array = render(result.model, signal.info, predict=result.predict)  # the final evaluation's grid, not a new pass
    if plots and kind.preview is not None:
        titled = "title" in inspect.signature(kind.preview).parameters  # a kind's own preview may not take one
        kind.preview(array, signal, out / "comparison.png",
                     **({"title": f"{record['model']} on {signal.name}"} if titled else {}))
    try:
        write_reconstruction(array, signal.info, out / f"reconstruction{kind.extension}")
    except InrkitError as exc:  # e.g. a shape field with no surface yet: weights and metrics are kept
        warnings.warn(f"no reconstruction written: {exc}", stacklevel=2)
        record["reconstruction_error"] = str(exc)
        (out / "metrics.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def _finite(metrics: dict[str, Any]) -> dict[str, Any]:
    """JSON has no inf: a perfect fit's PSNR is written as null."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}


HISTORY_COLUMNS = ("step", "loss", "psnr", "seconds", "samples")


def write_history(history: list[dict[str, float]], path: Path) -> None:
    with open(path, "w", newline="") as f:
        extra = sorted({key for row in history for key in row} - set(HISTORY_COLUMNS))  # e.g. a shape's iou
        writer = csv.DictWriter(f, fieldnames=[*HISTORY_COLUMNS, *extra])
        writer.writeheader()
        writer.writerows(history)



def plot_curve(history: list[dict[str, float]], path: Path, title: str = "") -> None:
    """PSNR over steps (loss when PSNR does not apply), as a PNG."""
    from .plotting import subplots

    steps = [r["step"] for r in history]
    use_psnr = any(math.isfinite(r["psnr"]) for r in history)
    ys = [r["psnr"] if use_psnr else r["loss"] for r in history]
    fig, ax = subplots(figsize=(6, 4))
    ax.plot(steps, ys)
    ax.set_xlabel("step")
    ax.set_ylabel("PSNR (dB)" if use_psnr else "loss")
    if not use_psnr:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
