"""`inrkit fit-many` and `inrkit meta-learn`: parse options, call one API function, print a summary."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import console, err_console, parse_size


def fit_many(
    source: Annotated[str, typer.Argument(help="a folder of signals, or a glob such as 'crops/*.png'")],
    model: Annotated[str, typer.Option("--model", "-m", help="backbone name (see `inrkit models`)")] = "siren",
    out: Annotated[Path, typer.Option(help="dataset folder (fields.safetensors + index.json); re-run to resume")] = Path("fields"),
    steps: Annotated[Optional[int], typer.Option(help="optimisation steps [default: the recipe's]")] = None,
    lr: Annotated[Optional[float], typer.Option(help="learning rate [default: the backbone's recipe]")] = None,
    lr_decay: Annotated[Optional[float], typer.Option(help="final lr factor, 1 = constant [default: recipe]")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="samples per step [default: whole signal]")] = None,
    params: Annotated[Optional[str], typer.Option(help="parameter budget, e.g. 200k; solves the width")] = None,
    width: Annotated[Optional[int], typer.Option(help="hidden width (hidden_features)")] = None,
    layers: Annotated[Optional[int], typer.Option(help="hidden layers (hidden_layers)")] = None,
    kind: Annotated[Optional[str], typer.Option(help="signal kind [default: from the file suffix]")] = None,
    seed: Annotated[int, typer.Option(help="base random seed (each file adds its own offset)")] = 0,
    seeds: Annotated[int, typer.Option(help="fits per file, each with its own seed")] = 1,
    init: Annotated[str, typer.Option(help="random (per member), shared (one for all) or a weights FILE "
                                           "(e.g. from `inrkit meta-learn`)")] = "random",
    chunk: Annotated[int, typer.Option(help="members trained together; each finished chunk is saved")] = 64,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps")] = "auto",
    target_psnr: Annotated[Optional[float], typer.Option(help="a member stops once this PSNR (dB) is reached")] = None,
    crop: Annotated[Optional[str], typer.Option(help="images: centre crop N or HxW")] = None,
    size: Annotated[Optional[str], typer.Option(help="resize every signal to HxW (images, video frames)")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
) -> None:
    """Fit every file of a folder as one batched run into a neural-field dataset (resumable)."""
    from ..fit import FitConfig
    from ..many import run_fit_many

    config = FitConfig(steps=steps, lr=lr, lr_decay=lr_decay, batch_size=batch_size, seed=seed, device=device,
                       target_psnr=target_psnr, progress=not quiet)
    options = {k: v for k, v in dict(crop=_pair(crop), size=_pair(size)).items() if v is not None}
    summary = run_fit_many(source, model, out, config, seeds=seeds, init=init, params=params, kind=kind,
                           signal_options=options, model_options={"hidden_features": width, "hidden_layers": layers},
                           chunk=chunk, warn=lambda line: err_console.print(f"warning: {line}", highlight=False, soft_wrap=True),
                           progress=None if quiet else _report)
    psnr = [p for p in summary.psnr if math.isfinite(p)]
    mean = f", mean PSNR {sum(psnr) / len(psnr):.2f} dB" if psnr else ""
    console.print(f"{summary.folder}: fitted {summary.fitted} now{mean}; {summary.skipped_existing} already there, "
                  f"{len(summary.unreadable)} unreadable, {summary.diverged} diverged", highlight=False, soft_wrap=True)
    if summary.interrupted:
        err_console.print("interrupted: finished members are saved; run the same command again to resume")
        raise typer.Exit(130)


def _pair(text: Optional[str]) -> Optional[object]:
    size = parse_size(text)
    return None if size is None else (size[0] if len(size) == 1 else size)


def _report(summary: object) -> None:
    err_console.print(f"saved {summary.fitted} members to {summary.folder}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `fit-many` and `meta-learn` to the app (kept here so cli/__init__.py needs one line)."""
    from .common import friendly

    app.command("fit-many")(friendly(fit_many))
