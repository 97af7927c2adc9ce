"""`inrkit fit-many` and `inrkit meta-learn`: parse options, call one API function, print a summary."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from .common import (
    DEVICE_HELP,
    MAX_INT,
    BatchSizeOption,
    KindOption,
    LayersOption,
    LrDecayOption,
    LrOption,
    ParamsOption,
    TargetsOption,
    WidthOption,
    console,
    err_console,
    factor,
    for_kinds,
    loader_size,
    parse_budget,
    positive,
)


def fit_many(
    source: Annotated[str, typer.Argument(help="a folder of signals, or a glob such as 'crops/*.png'")],
    model: Annotated[str, typer.Option("--model", "-m", help="backbone name (see `inrkit models`)")] = "siren",
    out: Annotated[Path, typer.Option(help="dataset folder (fields.safetensors + index.json); "
                                      "re-run to resume")] = Path("fields"),
    steps: Annotated[int | None, typer.Option(min=1, max=MAX_INT, help="optimisation steps",
                                                 show_default="the recipe's")] = None,
    lr: LrOption = None,
    lr_decay: LrDecayOption = None,
    batch_size: BatchSizeOption = None,
    params: ParamsOption = None,
    width: WidthOption = None,
    layers: LayersOption = None,
    targets: TargetsOption = None,
    kind: KindOption = None,
    seed: Annotated[int, typer.Option(min=0, max=MAX_INT, help="base random seed (each file adds its own offset)")] = 0,
    seeds: Annotated[int, typer.Option(min=1, max=MAX_INT, help="fits per file, each with its own seed")] = 1,
    init: Annotated[str, typer.Option(help="random (per member), shared (one for all) or a weights FILE "
                                           "(e.g. from `inrkit meta-learn`)")] = "random",
    chunk: Annotated[int, typer.Option(min=1, max=MAX_INT, help="members trained together; each finished chunk "
                                                                "is saved")] = 64,
    device: Annotated[str, typer.Option(help=DEVICE_HELP)] = "auto",
    target_psnr: Annotated[float | None, typer.Option(parser=positive, help="a member stops once this PSNR (dB) "
                                                         "is reached", show_default="run every step")] = None,
    crop: Annotated[str | None, typer.Option(help=for_kinds("crop", "load_options") + "centre crop N or HxW",
                                                show_default="no crop")] = None,
    size: Annotated[str | None, typer.Option(help=for_kinds("size", "load_options") + "resize to N or HxW",
                                                show_default="as loaded")] = None,
    compile_: Annotated[bool, typer.Option("--compile", help="train through torch.compile (pays off on long runs; "
                                                             "a first compile can take tens of seconds)")] = False,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
) -> None:
    """Fit every file of a folder as one batched run into a neural-field dataset (resumable)."""
    from ..fit import FitConfig
    from ..many import run_fit_many
    from ..publish import check_target

    check_target(out, known=lambda name: True)  # a file, a system folder or an unwritable place: before any fit
    config = FitConfig(steps=steps, lr=lr, lr_decay=lr_decay, batch_size=batch_size, seed=seed, device=device,
                       target_psnr=target_psnr, compile=compile_, progress=not quiet)
    options = {k: v for k, v in dict(crop=loader_size(crop, "--crop"), size=loader_size(size, "--size")).items()
               if v is not None}
    summary = run_fit_many(source, model, out, config, seeds=seeds, init=init, params=parse_budget(params), kind=kind,
                           signal_options=options, model_options={"hidden_features": width, "hidden_layers": layers,
                                                                  "targets": targets},
                           chunk=chunk, warn=lambda line: err_console.print(f"warning: {line}", markup=False,
                                                                           highlight=False, soft_wrap=True),
                           progress=None if quiet else _report)
    psnr = [p for p in summary.psnr if math.isfinite(p)]
    mean = f", mean PSNR {sum(psnr) / len(psnr):.2f} dB" if psnr else ""
    console.print(f"{summary.folder}: fitted {summary.fitted} now{mean}; {summary.skipped_existing} already there, "
                  f"{len(summary.unreadable)} unreadable, {summary.diverged} diverged", highlight=False, soft_wrap=True)
    if summary.interrupted:
        err_console.print("interrupted: finished members are saved; run the same command again to resume")
        raise typer.Exit(130)


def _report(summary: object) -> None:
    err_console.print(f"saved {summary.fitted} members to {summary.folder}", highlight=False, soft_wrap=True)


def meta_learn(
    source: Annotated[str, typer.Argument(help="a folder of same-shaped signals, or a glob")],
    model: Annotated[str, typer.Option("--model", "-m", help="backbone name (see `inrkit models`)")] = "siren",
    out: Annotated[Path, typer.Option(help="weights file of the learned init")] = Path("init.safetensors"),
    outer_steps: Annotated[int, typer.Option(min=1, max=MAX_INT, help="init updates")] = 150,
    inner_steps: Annotated[int, typer.Option(min=1, max=MAX_INT, help="Adam steps per signal between updates")] = 400,
    inner_lr: Annotated[float | None, typer.Option(parser=positive, help="inner learning rate",
                                                      show_default="the recipe's")] = None,
    meta_batch: Annotated[int, typer.Option(min=1, max=MAX_INT, help="signals fitted together per update")] = 8,
    outer_lr: Annotated[float, typer.Option(parser=factor, help="first step toward the fitted weights "
                                                                "(0 to 1, falls to 0)")] = 1.0,
    params: ParamsOption = None,
    width: WidthOption = None,
    layers: LayersOption = None,
    kind: KindOption = None,
    crop: Annotated[str | None, typer.Option(help="images: centre crop N or HxW", show_default="no crop")] = None,
    size: Annotated[str | None, typer.Option(help="resize every signal to HxW", show_default="as loaded")] = None,
    seed: Annotated[int, typer.Option(min=0, max=MAX_INT, help="random seed")] = 0,
    device: Annotated[str, typer.Option(help=DEVICE_HELP)] = "auto",
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
) -> None:
    """Learn an initialisation (Reptile) over a folder; start fits from it with --init FILE."""
    from ..export import save
    from ..many import expand_sources, load_all
    from ..meta import MetaConfig
    from ..meta import meta_learn as learn
    from ..models import create_model

    config = MetaConfig(outer_steps=outer_steps, inner_steps=inner_steps, inner_lr=inner_lr, meta_batch=meta_batch,
                        outer_lr=outer_lr, seed=seed, device=device, progress=not quiet)
    options = {k: v for k, v in dict(crop=loader_size(crop, "--crop"), size=loader_size(size, "--size")).items()
               if v is not None}
    budget = parse_budget(params)  # every option is checked before any file is read

    def warn(line: str) -> None:
        err_console.print(f"warning: {line}", markup=False, highlight=False, soft_wrap=True)

    loaded, _ = load_all(expand_sources(source), kind, options, warn)
    if not loaded:
        from ..errors import ConfigError

        raise ConfigError(f"{source}: none of the files could be read")
    init = learn([s for _, s in loaded], lambda s: create_model(model, signal=s, params=budget, hidden_features=width,
                                                               hidden_layers=layers), config)
    save(init, out, extra={"meta_learned": {"signals": len(loaded), "source": str(source), **vars(config)}})
    console.print(f"wrote {out} (learned on {len(loaded)} signals); use it with --init {out}", highlight=False,
                  soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `fit-many` and `meta-learn` to the app (kept here so cli/__init__.py needs one line)."""
    from .common import friendly

    app.command("fit-many")(friendly(fit_many))
    app.command("meta-learn")(friendly(meta_learn))
