"""`inrkit export`, `decode`, `rd`, `compress` and `decompress`: parse options, call the compression API, print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .. import progress
from ..errors import ConfigError
from .common import (
    DEVICE_HELP,
    MAX_INT,
    console,
    emit_json,
    fraction,
    loader_size,
    non_negative,
    parse_bits,
    parse_budget,
    positive,
    split_list,
)
from .fit import JSON_HELP


def _print(rows: dict[str, str], title: str) -> None:
    from rich.table import Table

    table = Table(title=title, show_header=False)
    for key, value in rows.items():
        table.add_row(key, value)
    console.print(table)


def export(
    weights: Annotated[Path, typer.Argument(help="run folder or .safetensors weights")],
    bits: Annotated[str | None, typer.Option(help="weight bit width 2-16, or fp16", show_default="8")] = None,
    max_loss: Annotated[float | None, typer.Option(parser=non_negative, help="smallest file losing at most this "
                                                      "many dB PSNR (searches width, per-channel, QAT)",
                                                      show_default="no search: --bits")] = None,
    target_bpp: Annotated[float | None, typer.Option(parser=positive, help="best PSNR in a file of at most this "
                                                        "many bits per sample (searches width, pruning, QAT)",
                                                        show_default="no search: --bits")] = None,
    per_channel: Annotated[bool, typer.Option(help="one scale per output channel")] = False,
    prune: Annotated[float, typer.Option(parser=fraction, help="fraction of smallest weights set to zero")] = 0.0,
    buffer_bits: Annotated[str, typer.Option(help="bit width of fixed buffers (e.g. FFN's B), or fp16")] = "16",
    signal: Annotated[Path | None, typer.Option(help="the signal, for quality and QAT",
                                                   show_default="the one the weights name, if still there")] = None,
    qat_steps: Annotated[int | None, typer.Option(min=0, max=MAX_INT, help="quantisation-aware fine-tuning steps "
                                                  "(per QAT run of a --max-loss/--target-bpp search)",
                                                  show_default="0; 300 per run for a target")] = None,
    qat_lr: Annotated[float | None, typer.Option(parser=positive, help="QAT learning rate",
                                                    show_default="recipe lr / 10")] = None,
    origin_seed: Annotated[int | None, typer.Option(min=0, max=MAX_INT, help="the seed the fit drew its initial "
                                                    "weights with: weights are stored as their change from them "
                                                    "where that is smaller", show_default="the run's --seed")] = None,
    out: Annotated[Path | None, typer.Option(help="the .inrz file", show_default="next to the weights")] = None,
    device: Annotated[str, typer.Option(help=DEVICE_HELP + " (where QAT runs)")] = "auto",
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Quantise and entropy-code fitted weights into one .inrz file; print its size, bpp and quality."""
    from ..export import compress, load
    from ..export.compress import check_inrz_name
    from ..export.qat import STEPS as QAT_STEPS
    from ..export.search import search_compress
    from ..utils import resolve_device

    goals = [name for name, value in (("--bits", bits), ("--max-loss", max_loss), ("--target-bpp", target_bpp))
             if value is not None]
    if len(goals) > 1:
        raise ConfigError(f"give one of --bits, --max-loss and --target-bpp, not {' and '.join(goals)}")
    weight_bits, fixed_bits = parse_bits(bits or "8"), parse_bits(buffer_bits, "--buffer-bits")
    if out is not None:
        check_inrz_name(out)
    model = load(weights, device=resolve_device(device))
    folder = weights if weights.is_dir() else weights.parent
    label = (f"loss{max_loss:g}dB" if max_loss is not None else f"{target_bpp:g}bpp" if target_bpp is not None
             else f"{bits or 8}bit{'-pc' if per_channel else ''}")
    target = out or folder / f"model-{label}.inrz"
    origin_seed = _run_seed(folder) if origin_seed is None else origin_seed
    with progress.quiet(quiet):
        if max_loss is None and target_bpp is None:
            stats = compress(model, target, weight_bits, per_channel=per_channel, prune=prune,
                             buffer_bits=fixed_bits, signal=signal, qat_steps=qat_steps or 0, qat_lr=qat_lr,
                             origin_seed=origin_seed)
        else:
            stats = search_compress(model, target, max_loss=max_loss, target_bpp=target_bpp, signal=signal,
                                    qat_steps=QAT_STEPS if qat_steps is None else qat_steps, qat_lr=qat_lr,
                                    origin_seed=origin_seed)
    if json_:
        emit_json(stats.to_dict())
        return
    rows = {"file": stats.path, "bytes": f"{stats.bytes:,}", "parameters": f"{stats.params:,}",
            "bits / parameter": f"{stats.bits_per_param:.3f}",
            "bpp (bits / sample)": f"{stats.bpp:.4f}" if stats.bpp is not None else "n/a",
            "coders": ", ".join(f"{k}×{v}" for k, v in sorted(stats.coders.items())),
            "setting": _setting(stats.spec)}
    if stats.origin:
        rows["stored as"] = f"changes from the init of seed {stats.origin['seed']} ({stats.origin['tensors']} tensors)"
    for key, value in stats.metrics.items():
        if isinstance(value, float):
            before = stats.float_metrics.get(key)
            rows[f"{key} (stored)"] = f"{value:.4f}" + (f"  (float: {before:.4f})" if isinstance(before, float) else "")
    if not stats.metrics:
        rows["quality"] = "not measured: pass --signal"
    _print(rows, title="compressed")


def _run_seed(folder: Path) -> int | None:
    """The seed a run folder's fit drew its model with (metrics.json), or None for weights outside a run."""
    try:
        seed = json.loads((folder / "metrics.json").read_text()).get("seed")
    except (OSError, ValueError, AttributeError):
        return None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else None


def _setting(spec: dict) -> str:
    """The knobs a file was stored with, in words."""
    widths = sorted({spec["bits"], *[b for _, b in spec.get("layer_bits", ())]}, key=lambda b: b or 99)
    text = "/".join(str(b or "fp16") for b in widths) + " bit" + (" per channel" if spec["per_channel"] else "")
    return text + (f", prune {spec['prune']:g}" if spec["prune"] else "")


def decode(
    file: Annotated[Path, typer.Argument(help="an .inrz file")],
    out: Annotated[Path | None, typer.Option(help="output file (.png, .wav, .mp4, .ply, ...)",
                                                show_default="the .inrz file with the kind's suffix")] = None,
    scale: Annotated[float | None, typer.Option(parser=positive, help="resolution factor (2 = twice each side)",
                                                   show_default="1")] = None,
    device: Annotated[str, typer.Option(help=DEVICE_HELP)] = "auto",
    force: Annotated[bool, typer.Option(help="replace an existing file at the default output path")] = False,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Rebuild the model from an .inrz file alone and render its signal (never over an existing file unless told)."""
    from ..export import decompress
    from ..inference import render, write_reconstruction
    from ..signals import get_kind
    from ..utils import resolve_device

    model = decompress(file, device=resolve_device(device))
    info = model.signal_info
    target = out or file.with_suffix(get_kind(info.kind).extension)
    if out is None and target.exists() and not force:  # beside photo.inrz often sits the original photo.png
        raise ConfigError(f"{target} exists; pass --out FILE, or --force to replace it")
    array = render(model, info, scale=scale)
    write_reconstruction(array, info, target)
    if json_:
        emit_json({"model": model.model_info.name, "kind": info.kind, "shape": list(array.shape), "wrote": target})
        return
    _print({"model": model.model_info.name, "signal": f"{info.kind} {' x '.join(map(str, array.shape))}",
            "wrote": str(target)}, title="decoded")


def _rd_bits(text: str) -> int:
    bits = parse_bits(text)
    if bits is None:  # the sweep labels and plots integer widths
        raise ConfigError("rd --bits takes integer bit widths from 2 to 16 (fp16 is for `inrkit export`)")
    return bits


LAMBDAS = "0.02,0.007,0.0025,0.0008"  # 0.13 to 1.07 bpp, mean over kodim01-08 at 1,500 steps (rd_kodak.sh)


def rd(
    images: Annotated[list[Path], typer.Argument(help="image files")],
    model: Annotated[str, typer.Option("--model", "-m", help="backbone name (see `inrkit models`), or latent for "
                                       "the latent-grid codec")] = "siren",
    params: Annotated[str, typer.Option(help="comma-separated parameter budgets, e.g. 2k,4k,8k")] = "2k,4k,8k",
    lambdas: Annotated[str, typer.Option(help="latent: comma-separated rate weights, one curve point each "
                                         "(larger: smaller files)")] = LAMBDAS,
    workers: Annotated[int, typer.Option(min=1, max=64, help="latent: cases coded at once (one thread each)")] = 1,
    bits: Annotated[str, typer.Option(help="comma-separated bit widths (2-16)")] = "8,10,12",
    steps: Annotated[int | None, typer.Option(min=1, max=MAX_INT, help="fit steps per model",
                                              show_default="1000 for latent, else 500")] = None,
    lr: Annotated[float | None, typer.Option(parser=positive, help="learning rate",
                                                show_default="the backbone's recipe")] = None,
    crop: Annotated[str | None, typer.Option(help="centre crop to N or HxW before fitting",
                                                show_default="no crop")] = None,
    size: Annotated[str | None, typer.Option(help="then resize to N or HxW", show_default="as loaded")] = None,
    out: Annotated[Path, typer.Option(help="folder for rd.json, rd.png and the .inrz files")] = Path("rd"),
    device: Annotated[str, typer.Option(help=DEVICE_HELP)] = "auto",
    seed: Annotated[int, typer.Option(min=0, max=MAX_INT, help="random seed (init and sampling)")] = 0,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
    recipe: Annotated[str, typer.Option(help="authors or fast (see `inrkit models`)")] = "authors",
) -> None:
    """Rate-distortion sweep over images, against JPEG, WebP and published codecs: backbone sizes x bit widths,
    or, with --model latent, the latent-grid codec at each --lambdas rate weight."""
    from ..bench.rd import run_rd
    from ..codec import LATENT
    from ..utils import resolve_device

    resolve_device(device)  # fail on a bad device before any fit
    if model == LATENT:
        _rd_latent(images, split_list(lambdas, _rate), steps or 1000, out, seed, workers, quiet, device)
        return
    budgets = split_list(params, parse_budget)
    widths = split_list(bits, _rd_bits)
    if not budgets or not widths:
        raise ConfigError("rd needs at least one --params budget and one --bits width")
    with progress.quiet(quiet):
        result = run_rd(images, model=model, params=budgets, bits=widths, steps=steps or 500, lr=lr,
                        crop=loader_size(crop, "--crop"), size=loader_size(size, "--size"), out=out,
                        device=device, seed=seed, progress=not quiet, recipe=recipe)
    rows = {f"{r['label']}": f"{r['bpp']:.3f} bpp  {r['psnr']:.2f} dB" for r in result["configs"]}
    rows.update({f"BD-rate {k}": f"{v:+.1f} %" for k, v in result["bd_rate_percent"].items() if v is not None})
    _print(rows, title=f"{result['name']} (mean over {len(images)} images); wrote {out}/rd.json, rd.png")


def _rate(text: str) -> float:
    try:
        return positive(text)
    except typer.BadParameter as exc:
        raise ConfigError(f"--lambdas {exc.message}") from None


def _rd_latent(images: list[Path], lambdas: list[float], steps: int, out: Path, seed: int, workers: int,
               quiet: bool, device: str) -> None:
    from ..bench.rd_latent import run_rd_latent

    if not lambdas:
        raise ConfigError("rd needs at least one --lambdas value")
    with progress.quiet(quiet):
        result = run_rd_latent(images, lambdas, steps=steps, out=out, seed=seed, workers=workers, progress=not quiet,
                               device=device)
    rows = {r["label"]: f"{r['bpp']:.3f} bpp  {r['psnr']:.2f} dB" for r in result["configs"]}
    rows.update({f"BD-rate {k}": f"{v:+.1f} %" for k, v in result["bd_rate_percent"].items() if v is not None})
    _print(rows, title=f"{result['name']} (mean over {len(images)} images); wrote {out}/rd.json, rd.png")


def compress(
    image: Annotated[Path, typer.Argument(help="an image file")],
    bpp: Annotated[float, typer.Option(parser=positive, help="target bits per pixel of the file (upper bound)")] = 0.3,
    out: Annotated[Path | None, typer.Option(help="the .inrz file", show_default="the image with .inrz")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="latent (latent grids, the best rate-distortion) or "
                                       "a backbone name (see `inrkit models`)")] = "latent",
    steps: Annotated[int | None, typer.Option(min=1, max=MAX_INT, help="fit steps",
                                              show_default="1000 for latent, 300 for a backbone")] = None,
    qat_steps: Annotated[int, typer.Option(min=0, max=MAX_INT, help="steps per QAT run (backbones)")] = 100,
    device: Annotated[str, typer.Option(help=DEVICE_HELP)] = "auto",
    seed: Annotated[int, typer.Option(min=0, max=MAX_INT, help="random seed")] = 0,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Code an image into an .inrz file of at most --bpp bits per pixel: fit, quantise, entropy-code."""
    from ..codec import LATENT, encode_image
    from ..utils import resolve_device

    resolve_device(device)
    with progress.quiet(quiet):
        result = encode_image(image, out or image.with_suffix(".inrz"), bpp, model=model, steps=steps,
                              qat_steps=qat_steps, seed=seed, device=device, progress=not quiet)
    stats = result.stats
    if json_:
        emit_json({**stats.to_dict(), "model": result.model, "steps": result.steps,
                   "encode_seconds": result.encode_seconds})
        return
    setting = "latent grids, context-coded" if result.model == LATENT else _setting(stats.spec)
    _print({"file": str(stats.path), "bytes": f"{stats.bytes:,}", "bpp": f"{stats.bpp:.4f}",
            "psnr": f"{stats.metrics['psnr']:.2f} dB", "model": f"{result.model}, {stats.params:,} parameters",
            "setting": setting, "encode time": f"{result.encode_seconds:.1f} s"}, title="compressed")


def decompress(
    file: Annotated[Path, typer.Argument(help="an .inrz file written by `inrkit compress`")],
    out: Annotated[Path | None, typer.Option(help="the image file", show_default="the .inrz file with .png")] = None,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Decode an .inrz image back to pixels (PNG unless --out names another format)."""
    import time

    from ..codec import decode_image

    start = time.perf_counter()
    array, target = decode_image(file, out)
    seconds = time.perf_counter() - start
    if json_:
        emit_json({"wrote": target, "shape": list(array.shape), "decode_seconds": seconds})
        return
    _print({"wrote": str(target), "image": " x ".join(map(str, array.shape)), "decode time": f"{seconds:.2f} s"},
           title="decompressed")
