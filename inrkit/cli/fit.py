"""`inrkit fit`, `render`, `eval` and `models`: parse options, call one API function, print a summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .. import progress
from ..errors import ConfigError
from . import tables as summary
from .common import (
    DEVICE_HELP,
    MAX_INT,
    MAX_THREADS,
    BatchSizeOption,
    KindOption,
    LayersOption,
    LrDecayOption,
    LrOption,
    ParamsOption,
    TargetsOption,
    WidthOption,
    check_applies,
    console,
    emit_json,
    err_console,
    for_kinds,
    kinds_with,
    loader_size,
    nearest,
    non_negative,
    parse_budget,
    parse_fit_budget,
    parse_size,
    positive,
    signal_kind,
)

JSON_HELP = "print one JSON object on stdout and nothing else"
LOAD, RENDER = "load_options", "render_options"


def fit(
    signal: Annotated[Path, typer.Argument(help="image, audio, video or mesh file")],
    model: Annotated[str, typer.Option("--model", "-m", help="backbone name (see `inrkit models`)")] = "siren",
    steps: Annotated[int | None, typer.Option(min=1, max=MAX_INT, help="optimisation steps",
                                                 show_default="the recipe's, else 2000")] = None,
    budget: Annotated[str | None, typer.Option(help="training budget instead of --steps: steps=N, epochs=N, "
                                                  "samples=N or seconds=S", show_default="--steps")] = None,
    recipe: Annotated[str, typer.Option(help="authors (the paper's protocol) or fast (inrkit's tuned one)")]
        = "authors",
    sampler: Annotated[str, typer.Option(help="uniform, or int: train on the samples the model gets most wrong")]
        = "uniform",
    precision: Annotated[str, typer.Option(help="fp32, tf32, bf16, fp16 (autocast), or bf16-fp32 (bf16, then the "
                                           "last fifth in fp32)")] = "fp32",
    compile_: Annotated[bool, typer.Option("--compile", help="train through torch.compile")] = False,
    threads: Annotated[int | None, typer.Option(min=1, max=MAX_THREADS, help="CPU threads",
                                                   show_default="torch's")] = None,
    lr: LrOption = None,
    lr_decay: LrDecayOption = None,
    batch_size: BatchSizeOption = None,
    params: ParamsOption = None,
    width: WidthOption = None,
    layers: LayersOption = None,
    targets: TargetsOption = None,
    kind: KindOption = None,
    seed: Annotated[int, typer.Option(min=0, max=MAX_INT, help="random seed (init and sampling)")] = 0,
    init: Annotated[Path | None, typer.Option(help="start from these weights (e.g. from `inrkit meta-learn`; same "
                                                  "backbone and size)", show_default="a random init")] = None,
    device: Annotated[str, typer.Option(help=DEVICE_HELP)] = "auto",
    target_psnr: Annotated[float | None, typer.Option(parser=positive, help="stop once this PSNR (dB) is reached",
                                                         show_default="run every step")] = None,
    target_iou: Annotated[float | None, typer.Option(parser=positive, help="shapes: stop once this IoU is reached",
                                                        show_default="run every step")] = None,
    eikonal: Annotated[float, typer.Option(parser=non_negative, help="weight of the eikonal term (0 = off; "
                                           f"{'/'.join(kinds_with('eikonal', 'loss_terms'))} only)")] = 0.0,
    out: Annotated[Path | None, typer.Option(help="run folder", show_default="runs/<signal>-<model>-<time>")] = None,
    resume: Annotated[bool, typer.Option(help="continue from the checkpoint of the same fit in --out")] = False,
    checkpoint: Annotated[bool, typer.Option(help="keep a resumable checkpoint.pt in the run folder")] = True,
    checkpoint_every: Annotated[str | None, typer.Option(help="steps (500) or seconds (30s) between checkpoints",
                                                            show_default="a tenth of the fit or 30s")] = None,
    plots: Annotated[bool, typer.Option(help="write curve.png and comparison.png")] = True,
    log: Annotated[list[str] | None, typer.Option(help="live logger, repeatable: csv (history.live.csv), "
                                                 "tensorboard (events in <out>/tensorboard)",
                                                 show_default="none")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
    crop: Annotated[str | None, typer.Option(help=for_kinds("crop", LOAD) + "centre crop to N or HxW",
                                                show_default="no crop")] = None,
    size: Annotated[str | None, typer.Option(help=for_kinds("size", LOAD) + "resize to N or HxW (after --crop)",
                                                show_default="as loaded")] = None,
    normalize: Annotated[bool, typer.Option(help=for_kinds("normalize", LOAD) + "scale the peak to 1")] = False,
    frames: Annotated[int | None, typer.Option(min=1, max=MAX_INT, help=for_kinds("frames", LOAD) +
                                                  "number of frames to take",
                                                  show_default="all")] = None,
    stride: Annotated[int | None, typer.Option(min=1, max=MAX_INT, help=for_kinds("stride", LOAD) +
                                                  "keep every n-th frame", show_default="1")] = None,
    start: Annotated[int | None, typer.Option(min=0, max=MAX_INT, help=for_kinds("start", LOAD) +
                                                 "index of the first frame", show_default="0")] = None,
    eval_res: Annotated[int | None, typer.Option(help=for_kinds("eval_res", LOAD) + "IoU grid resolution (8-512)",
                                                    show_default="128")] = None,
) -> None:
    """Fit a backbone to a signal; write weights, reconstruction, metrics and curves.

    The run folder is replaced whole when the fit ends (Ctrl-C or SIGTERM stop it and keep what was learnt).
    """
    from ..fit import FitConfig
    from ..runs import run_fit

    signal_options = {k: v for k, v in dict(crop=loader_size(crop, "--crop"), size=loader_size(size, "--size"),
                                            normalize=normalize or None, frames=frames, stride=stride, start=start,
                                            eval_res=eval_res).items() if v is not None}
    loss_terms = {"eikonal": eikonal} if eikonal else {}
    kind_name = signal_kind(signal, kind)
    if kind_name is not None:
        check_applies(kind_name, signal_options, LOAD)
        check_applies(kind_name, loss_terms, "loss_terms")
    limits = parse_fit_budget(budget)
    if limits and steps is not None:
        raise ConfigError("give --steps or --budget, not both")
    config = FitConfig(steps=steps, lr=lr, lr_decay=lr_decay, batch_size=batch_size, seed=seed, device=device,
                       target_psnr=target_psnr, target_iou=target_iou, progress=not quiet, loss_terms=loss_terms,
                       recipe=recipe, sampler=sampler, precision=precision, compile=compile_, threads=threads,
                       checkpoint_every=checkpoint_every, **limits)
    with progress.quiet(quiet):
        result, run = run_fit(signal, model, out=out, config=config, params=parse_budget(params), kind=kind,
                              resume=resume, signal_options=signal_options, checkpoint=checkpoint, plots=plots,
                              model_options={"hidden_features": width, "hidden_layers": layers, "targets": targets},
                              log=log or (),
                              init=init)
    if json_:
        emit_json({"run": run, **json.loads((run / "metrics.json").read_text())})
    else:
        console.print(summary.fit_table(result, run))
    if result.interrupted:
        err_console.print(f"interrupted at step {result.steps}: saved what was learnt"
                          + (f"; continue with --out {run} --resume" if checkpoint else ""))
        raise typer.Exit(130)


def render(
    run: Annotated[Path, typer.Argument(help="run folder or .safetensors weights")],
    scale: Annotated[float | None, typer.Option(parser=positive, help="resolution factor (2 = twice each side)",
                                                   show_default="1")] = None,
    size: Annotated[str | None, typer.Option(help="explicit size, N or HxW, e.g. 512x512",
                                                show_default="the fitted size x --scale")] = None,
    rate: Annotated[float | None, typer.Option(parser=positive, help=for_kinds("rate", RENDER) + "sample rate in Hz",
                                                  show_default="the original")] = None,
    fps: Annotated[float | None, typer.Option(parser=positive, help=for_kinds("fps", RENDER) +
                                                 "frame rate, same duration", show_default="the original")] = None,
    frames: Annotated[int | None, typer.Option(min=1, max=MAX_INT, help=for_kinds("frames", RENDER) +
                                                  "number of frames over the same duration",
                                                  show_default="the original")] = None,
    res: Annotated[int | None, typer.Option(min=8, max=2048, help=for_kinds("res", RENDER) +
                                               "marching-cubes grid resolution (8-2048)",
                                               show_default="the fit's evaluation grid")] = None,
    out: Annotated[Path | None, typer.Option(help="output file", show_default="next to the weights")] = None,
    device: Annotated[str, typer.Option(help=DEVICE_HELP)] = "auto",
) -> None:
    """Rebuild a model from its weights alone and render the signal at any resolution."""
    from ..export import load
    from ..inference import check_output, write_reconstruction
    from ..inference import render as render_signal
    from ..signals import get_kind
    from ..utils import resolve_device

    dims = parse_size(size)
    model = load(run, device=resolve_device(device))
    info = model.signal_info
    if info is None:  # weights saved from a model built without a signal: no grid to render on
        raise ConfigError(f"{run}: the weights record no signal layout (kind, shape), so there is nothing to render")
    kind_options = {k: v for k, v in dict(rate=rate, fps=fps, frames=frames, res=res).items() if v is not None}
    check_applies(info.kind, kind_options, RENDER)
    if out is not None:
        check_output(out, info.kind)  # a wrong suffix or an unwritable place is refused before rendering
    if dims is not None and len(dims) == 1 and info.shape:
        dims = dims * len(info.shape)  # N means N along every axis
    array = render_signal(model, info, scale=scale, size=dims, **kind_options)
    folder = run if run.is_dir() else run.parent
    target = out or folder / f"render-{'x'.join(map(str, array.shape[:-1]))}{get_kind(info.kind).extension}"
    write_reconstruction(array, info, target)
    console.print(f"wrote {target} ({' x '.join(map(str, array.shape))})")


def eval_(
    run: Annotated[Path, typer.Argument(help="run folder or .safetensors weights")],
    signal: Annotated[Path, typer.Argument(help="the signal to compare against")],
    kind: Annotated[str | None, typer.Option(help="signal kind", show_default="the model's")] = None,
    device: Annotated[str, typer.Option(help=DEVICE_HELP)] = "auto",
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Metrics of a saved model against a signal."""
    from ..errors import SignalError
    from ..export import load
    from ..inference import evaluate
    from ..signals import load_signal
    from ..utils import resolve_device

    model = load(run, device=resolve_device(device))
    info = model.signal_info
    if info is None and kind is None:
        raise ConfigError(f"{run}: the weights record no signal kind; pass --kind")
    target = load_signal(signal, kind or info.kind)
    # Any grid size is fine (a model is a continuous function); the channels must agree.
    channels = info.channels if info is not None else model.model_info.kwargs.get("out_features")
    if target.channels != channels:
        raise SignalError(f"{signal}: has {target.channels} channels, the model {channels}")
    metrics = evaluate(model, target)
    if json_:
        emit_json({"run": run, "signal": signal, "kind": target.kind, "metrics": metrics})
    else:
        console.print(summary.metrics_table(metrics, title=f"{run} vs {signal}"))


def models(
    pattern: Annotated[str | None, typer.Argument(help="glob filter, e.g. 's*'", show_default="all")] = None,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Registered backbones, their recipe per signal kind and parameter counts at the default size."""
    from ..errors import ModelError
    from ..models import MODELS, list_models

    names = list_models(pattern)
    if not names:
        close = nearest((pattern or "").strip("*?[]"), MODELS)
        raise ModelError(f"no backbone matches {pattern!r}; nearest: {', '.join(close)}")
    rows = summary.model_rows(names)
    if json_:
        emit_json({"models": rows})
    else:
        console.print(summary.models_table(rows))
