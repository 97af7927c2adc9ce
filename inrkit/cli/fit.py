"""`inrkit fit`, `render`, `eval` and `models`: parse options, call one API function, print a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import tables as summary
from .common import console, err_console, parse_size


def fit(
    signal: Annotated[Path, typer.Argument(help="image, audio, video or mesh file")],
    model: Annotated[str, typer.Option("--model", "-m", help="backbone name (see `inrkit models`)")] = "siren",
    steps: Annotated[int, typer.Option(help="optimisation steps")] = 2000,
    lr: Annotated[Optional[float], typer.Option(help="learning rate [default: the backbone's recipe]")] = None,
    lr_decay: Annotated[Optional[float], typer.Option(help="final lr factor, 1 = constant [default: recipe]")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="samples per step [default: whole signal]")] = None,
    params: Annotated[Optional[str], typer.Option(help="parameter budget, e.g. 200k; solves the width")] = None,
    width: Annotated[Optional[int], typer.Option(help="hidden width (hidden_features)")] = None,
    layers: Annotated[Optional[int], typer.Option(help="hidden layers (hidden_layers)")] = None,
    kind: Annotated[Optional[str], typer.Option(help="signal kind [default: from the file suffix]")] = None,
    seed: Annotated[int, typer.Option(help="random seed (init and sampling)")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps")] = "auto",
    target_psnr: Annotated[Optional[float], typer.Option(help="stop once this PSNR (dB) is reached")] = None,
    eikonal: Annotated[float, typer.Option(help="weight of the eikonal term for --kind sdf (0 = off)")] = 0.0,
    out: Annotated[Optional[Path], typer.Option(help="run folder [default: runs/<signal>-<model>-<time>]")] = None,
    resume: Annotated[bool, typer.Option(help="continue from the checkpoint in --out")] = False,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
    frames: Annotated[Optional[int], typer.Option(help="video: number of frames to take")] = None,
    stride: Annotated[Optional[int], typer.Option(help="video: keep every n-th frame")] = None,
    size: Annotated[Optional[str], typer.Option(help="video: resize frames to HxW, e.g. 64x150")] = None,
    start: Annotated[Optional[int], typer.Option(help="video: index of the first frame")] = None,
    eval_res: Annotated[Optional[int], typer.Option(help="shapes: IoU grid resolution (8-512) [default: 128]")] = None,
) -> None:
    """Fit a backbone to a signal; write weights, reconstruction, metrics and curves."""
    from ..fit import FitConfig
    from ..runs import run_fit

    config = FitConfig(steps=steps, lr=lr, lr_decay=lr_decay, batch_size=batch_size, seed=seed, device=device,
                       target_psnr=target_psnr, progress=not quiet, loss_terms={"eikonal": eikonal} if eikonal else {})
    signal_options = {k: v for k, v in dict(frames=frames, stride=stride, size=size, start=start,
                                            eval_res=eval_res).items() if v is not None}
    result, run = run_fit(signal, model, out=out, config=config, params=params, kind=kind, resume=resume,
                          signal_options=signal_options,
                          model_options={"hidden_features": width, "hidden_layers": layers})
    console.print(summary.fit_table(result, run))
    if result.interrupted:
        err_console.print(f"interrupted at step {result.steps}: saved what was learnt; "
                          f"continue with --out {run} --resume")
        raise typer.Exit(130)


def render(
    run: Annotated[Path, typer.Argument(help="run folder or .safetensors weights")],
    scale: Annotated[Optional[float], typer.Option(help="resolution factor (2 = twice each side)")] = None,
    size: Annotated[Optional[str], typer.Option(help="explicit size, e.g. 512x512")] = None,
    rate: Annotated[Optional[float], typer.Option(help="audio: sample rate in Hz [default: the original]")] = None,
    fps: Annotated[Optional[float], typer.Option(help="video: frame rate, same duration [default: original]")] = None,
    frames: Annotated[Optional[int], typer.Option(help="video: number of frames over the same duration")] = None,
    res: Annotated[Optional[int], typer.Option(help="shapes: marching-cubes grid resolution, e.g. 256")] = None,
    out: Annotated[Optional[Path], typer.Option(help="output file [default: next to the weights]")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps")] = "auto",
) -> None:
    """Rebuild a model from its weights alone and render the signal at any resolution."""
    from ..export import load
    from ..inference import write_reconstruction
    from ..inference import render as render_signal
    from ..signals import get_kind
    from ..utils import resolve_device

    model = load(run, device=resolve_device(device))
    info = model.signal_info
    kind_options = {k: v for k, v in dict(rate=rate, fps=fps, frames=frames, res=res).items() if v is not None}
    array = render_signal(model, info, scale=scale, size=parse_size(size), **kind_options)
    folder = run if run.is_dir() else run.parent
    target = out or folder / f"render-{'x'.join(map(str, array.shape[:-1]))}{get_kind(info.kind).extension}"
    write_reconstruction(array, info, target)
    console.print(f"wrote {target} ({' x '.join(map(str, array.shape))})")


def eval_(
    run: Annotated[Path, typer.Argument(help="run folder or .safetensors weights")],
    signal: Annotated[Path, typer.Argument(help="the signal to compare against")],
    kind: Annotated[Optional[str], typer.Option(help="signal kind [default: the model's]")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps")] = "auto",
) -> None:
    """Metrics of a saved model against a signal."""
    from ..errors import SignalError
    from ..export import load
    from ..inference import evaluate
    from ..signals import load_signal
    from ..utils import resolve_device

    model = load(run, device=resolve_device(device))
    target = load_signal(signal, kind or model.signal_info.kind)
    # Any grid size is fine (a model is a continuous function); the channels must agree.
    if target.channels != model.signal_info.channels:
        raise SignalError(f"{signal}: has {target.channels} channels, the model {model.signal_info.channels}")
    console.print(summary.metrics_table(evaluate(model, target), title=f"{run} vs {signal}"))


def models(pattern: Annotated[Optional[str], typer.Argument(help="glob filter, e.g. 's*'")] = None) -> None:
    """Registered backbones, their recipe per signal kind and parameter counts at the default size."""
    console.print(summary.models_table(pattern))

