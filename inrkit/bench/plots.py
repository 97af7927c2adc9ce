"""Benchmark plots from store rows: quality over steps, quality vs parameters, a gallery per kind.

The gallery is pluggable per kind (`register_gallery`); the default lays out the thumbnails each
case saved (image crops, a video's middle frame, ...). A plot that fails is reported, not raised.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..plotting import subplots

Gallery = Callable[[list[dict[str, Any]], Path, Path], "Path | None"]
GALLERIES: dict[str, Gallery] = {}


def register_gallery(kind: str, fn: Gallery) -> Gallery:
    """Use `fn(rows, out_dir, path) -> path or None` to draw the gallery of `kind`.

    Example:
        >>> register_gallery("audio", my_waveform_gallery)  # doctest: +SKIP
    """
    GALLERIES[kind] = fn
    return fn


def make_plots(rows: list[dict[str, Any]], kind: str, metric: str | None,
               out: Path) -> list[tuple[Path | None, str]]:
    """Draw every plot of a kind; each entry is (path, "") or (None, why it is missing)."""
    jobs = [("curves", lambda p: curves_plot(rows, p)),
            ("quality_vs_params", lambda p: params_plot(rows, metric, p)),
            ("gallery", lambda p: GALLERIES.get(kind, thumbnail_gallery)(rows, out, p))]
    made = []
    for name, draw in jobs:
        path = out / f"{name}_{kind}.png"
        try:
            made.append((draw(path), "") if metric or name == "curves" else (None, f"{name}: no metric"))
        except Exception as exc:  # noqa: BLE001  a broken plot must not lose the tables
            made.append((None, f"{name} plot failed: {type(exc).__name__}: {exc}"))
    return [(p, note) for p, note in made if p is not None or note]


def curves_plot(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Mean PSNR over steps per model (loss, log scale, where PSNR is not defined)."""
    use_psnr = any(h[2] is not None for r in rows for h in r["history"])
    col = 2 if use_psnr else 1
    series: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        for h in r["history"]:
            if h[col] is not None and math.isfinite(h[col]):
                series[r["model"]][int(h[0])].append(h[col])
    if not series:
        return None
    fig, ax = subplots(figsize=(6, 4))
    for model, points in sorted(series.items()):
        steps = sorted(points)
        ax.plot(steps, [statistics.fmean(points[s]) for s in steps], label=model)
    ax.set_xlabel("step")
    ax.set_ylabel("PSNR (dB)" if use_psnr else "loss")
    if not use_psnr:
        ax.set_yscale("log")
    ax.set_title(f"{rows[0]['kind']}: mean over {_subject(rows)} and seeds, per model")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


NAMES = {"psnr": "PSNR", "ssim": "SSIM", "ms_ssim": "MS-SSIM", "snr": "SNR", "mse": "MSE", "iou": "IoU",
         "chamfer": "Chamfer distance", "fscore": "F-score"}


def metric_label(kind: str, metric: str) -> str:
    """A metric's name as people write it, with its unit from the kind's `Metric`: "PSNR (dB)".

    Example:
        >>> metric_label("image", "psnr"), metric_label("image", "ssim")
        ('PSNR (dB)', 'SSIM')
    """
    from ..signals import KINDS

    unit = KINDS[kind].metric(metric).unit if kind in KINDS and KINDS[kind].metric(metric) else ""
    name = NAMES.get(metric, metric)
    return f"{name} ({unit})" if unit else name


def _format_score(value: float, unit: str) -> str:
    return f"{value:.2f} {unit}".strip() if unit else f"{value:.4f}"


def _subject(rows: list[dict[str, Any]]) -> str:
    signals = sorted({r["signal_name"] for r in rows})
    return signals[0] if len(signals) == 1 else f"{len(signals)} signals"


def params_plot(rows: list[dict[str, Any]], metric: str, path: Path) -> Path | None:
    """Headline metric against parameter count, one point per model (error bar: std over cases).

    Models at one budget (sizes within 2x) are spread along a linear axis labelled in thousands,
    since a log axis over less than a decade crowds its tick labels.
    """
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    kind = rows[0]["kind"]
    points = []
    for model in sorted({r["model"] for r in rows}):
        mine = [r for r in rows if r["model"] == model and r["metrics"].get(metric) is not None
                and r["params"] is not None]
        if mine:
            values = [r["metrics"][metric] for r in mine]
            points.append((model, statistics.fmean(r["params"] for r in mine), values))
    if not points:
        return None
    fig, ax = subplots(figsize=(6.4, 4.2))
    for model, x, values in points:
        ax.errorbar([x], [statistics.fmean(values)], yerr=[statistics.pstdev(values)], fmt="o", capsize=3,
                    label=model)
    xs = [x for _, x, _ in points]
    if max(xs) > 2 * min(xs):
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda *_: ""))  # minor labels are what overlapped
    else:
        pad = max(0.1 * max(xs), 1.0)
        ax.set_xlim(min(xs) - pad, max(xs) + pad)
        ax.xaxis.set_major_locator(MaxNLocator(4))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k" if v >= 1000 else f"{v:g}"))
    ax.set_xlabel("parameters")
    ax.set_ylabel(metric_label(kind, metric))
    ax.set_title(f"{kind}: {metric_label(kind, metric)} vs size, mean over {_subject(rows)}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def thumbnail_gallery(rows: list[dict[str, Any]], out: Path, path: Path, max_signals: int = 6) -> Path | None:
    """Signals as rows; the original then each model's reconstruction (lowest seed) as columns."""
    import imageio.v3 as iio

    from .case import original_thumbnail

    seed = min(r["seed"] for r in rows)
    models = sorted({r["model"] for r in rows})
    signals = sorted({r["signal"] for r in rows})[:max_signals]
    cells: dict[tuple[str, str], str | None] = {(r["signal"], r["model"]): r.get("thumbnail")
                                                for r in rows if r["seed"] == seed}
    if not any(p and Path(p).exists() for p in cells.values()):
        return None
    kind = rows[0]["kind"]
    metric, unit = _headline(kind)
    scores = {(r["signal"], r["model"]): r["metrics"].get(metric) for r in rows if r["seed"] == seed}
    fig, axes = subplots(len(signals), len(models) + 1, squeeze=False,
                         figsize=(1.9 * (len(models) + 1), 2.2 * len(signals) + 0.4))
    for i, signal in enumerate(signals):
        load = next(r["config"].get("load", {}) for r in rows if r["signal"] == signal)
        pictures = [str(original_thumbnail(out, signal, load)), *(cells.get((signal, m)) for m in models)]
        for j, (picture, title) in enumerate(zip(pictures, ["original", *models])):
            ax = axes[i][j]
            ax.axis("off")
            if picture and Path(picture).exists():
                image = iio.imread(picture)
                ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
            else:
                ax.text(0.5, 0.5, "n/a", ha="center", va="center")
            score = scores.get((signal, title)) if j else None
            if score is not None:  # below the tile: axis("off") hides x labels, so text in axes units
                ax.text(0.5, -0.04, _format_score(score, unit), transform=ax.transAxes, ha="center", va="top",
                        fontsize=7)
            if i == 0:
                ax.set_title(title, fontsize=8)
        axes[i][0].text(-0.05, 0.5, Path(signal).stem, transform=axes[i][0].transAxes, rotation=90,
                        ha="right", va="center", fontsize=8)
    fig.suptitle(f"{kind}: reconstructions (seed {seed}), {metric_label(kind, metric)} under each", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def _headline(kind: str) -> tuple[str, str]:
    """The kind's headline metric and its unit ("psnr", "dB")."""
    from ..signals import KINDS

    if kind not in KINDS:
        return "psnr", "dB"
    metric = KINDS[kind].metrics[0]
    return metric.name, metric.unit
