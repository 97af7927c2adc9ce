"""`inrkit export`, `inrkit decode` and `inrkit rd`: parse options, call the compression API, print a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import ConfigError
from .common import console, parse_bits




def _print(rows: dict[str, str], title: str) -> None:
    from rich.table import Table


    table = Table(title=title, show_header=False)
    for key, value in rows.items():
        table.add_row(key, value)
    console.print(table)


def export(
    weights: Annotated[Path, typer.Argument(help="run folder or .safetensors weights")],
    bits: Annotated[str, typer.Option(help="weight bit width 2-16, or fp16")] = "8",
    per_channel: Annotated[bool, typer.Option(help="one scale per output channel")] = False,
    prune: Annotated[float, typer.Option(help="fraction of smallest weights set to zero")] = 0.0,
    buffer_bits: Annotated[str, typer.Option(help="bit width of fixed buffers (e.g. FFN's B), or fp16")] = "16",
    signal: Annotated[Optional[Path], typer.Option(help="the signal, for quality and QAT [default: the one "
                                                        "the weights name, if it is still there]")] = None,
    qat_steps: Annotated[int, typer.Option(help="quantisation-aware fine-tuning steps")] = 0,
    qat_lr: Annotated[Optional[float], typer.Option(help="QAT learning rate [default: recipe lr / 10]")] = None,
    out: Annotated[Optional[Path], typer.Option(help="the .inrz file [default: next to the weights]")] = None,
) -> None:
    """Quantise and entropy-code fitted weights into one .inrz file; print its size, bpp and quality."""
    from ..export import load
    from ..export import compress

    if qat_steps < 0:
        raise ConfigError(f"--qat-steps must be 0 or more, got {qat_steps}")
    model = load(weights)
    folder = weights if weights.is_dir() else weights.parent
    target = out or folder / f"model-{bits}bit{'-pc' if per_channel else ''}.inrz"
    stats = compress(model, target, parse_bits(bits), per_channel=per_channel, prune=prune,
                     buffer_bits=parse_bits(buffer_bits), signal=signal, qat_steps=qat_steps, qat_lr=qat_lr)
    rows = {"file": stats.path, "bytes": f"{stats.bytes:,}", "parameters": f"{stats.params:,}",
            "bits / parameter": f"{stats.bits_per_param:.3f}",
            "bpp (bits / sample)": f"{stats.bpp:.4f}" if stats.bpp is not None else "n/a",
            "coders": ", ".join(f"{k}×{v}" for k, v in sorted(stats.coders.items()))}
    for key, value in stats.metrics.items():
        if isinstance(value, float):
            before = stats.float_metrics.get(key)
            rows[f"{key} (stored)"] = f"{value:.4f}" + (f"  (float: {before:.4f})" if isinstance(before, float) else "")
    if not stats.metrics:
        rows["quality"] = "not measured: pass --signal"
    _print(rows, title="compressed")


def decode(
    file: Annotated[Path, typer.Argument(help="an .inrz file")],
    out: Annotated[Optional[Path], typer.Option(help="output file (.png, .wav, .mp4, .ply, ...)")] = None,
    scale: Annotated[Optional[float], typer.Option(help="resolution factor (2 = twice each side)")] = None,
) -> None:
    """Rebuild the model from an .inrz file alone and render its signal."""
    from ..signals import get_kind
    from ..export import decompress
    from ..inference import render, write_reconstruction

    model = decompress(file)
    info = model.signal_info
    array = render(model, info, scale=scale)
    target = out or file.with_suffix(get_kind(info.kind).extension)
    write_reconstruction(array, info, target)
    _print({"model": model.model_info.name, "signal": f"{info.kind} {' x '.join(map(str, array.shape))}",
                   "wrote": str(target)}, title="decoded")


def rd(
    images: Annotated[list[Path], typer.Argument(help="image files")],
    model: Annotated[str, typer.Option(help="backbone")] = "siren",
    params: Annotated[str, typer.Option(help="comma-separated parameter budgets, e.g. 2k,4k,8k")] = "2k,4k,8k",
    bits: Annotated[str, typer.Option(help="comma-separated bit widths")] = "8,10,12",
    steps: Annotated[int, typer.Option(help="fit steps per model")] = 500,
    lr: Annotated[Optional[float], typer.Option(help="learning rate [default: recipe]")] = None,
    crop: Annotated[Optional[int], typer.Option(help="centre crop to NxN before fitting")] = None,
    size: Annotated[Optional[int], typer.Option(help="then resize to NxN")] = None,
    out: Annotated[Path, typer.Option(help="folder for rd.json, rd.png and the .inrz files")] = Path("rd"),
) -> None:
    """Rate-distortion sweep: model sizes x bit widths over images, against JPEG, WebP and published codecs."""
    from ..utils import parse_count
    from ..bench.rd import run_rd

    budgets = [parse_count(p) for p in params.split(",") if p.strip()]
    widths = [int(b) for b in bits.split(",") if b.strip()]
    result = run_rd(images, model=model, params=budgets, bits=widths, steps=steps, lr=lr, crop=crop, size=size,
                    out=out)
    rows = {f"{r['label']}": f"{r['bpp']:.3f} bpp  {r['psnr']:.2f} dB" for r in result["configs"]}
    _print(rows, title=f"{result['name']} (mean over {len(images)} images); wrote {out}/rd.json, rd.png")
