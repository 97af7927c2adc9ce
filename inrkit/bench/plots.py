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
    ax.set_title(f"{rows[0]['kind']}: mean over signals and seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def params_plot(rows: list[dict[str, Any]], metric: str, path: Path) -> Path | None:
    """Headline metric against parameter count, one point per model (error bar: std over cases)."""
    fig, ax = subplots(figsize=(6, 4))
    for model in sorted({r["model"] for r in rows}):
        mine = [r for r in rows if r["model"] == model and r["metrics"].get(metric) is not None]
        if not mine:
            continue
        values = [r["metrics"][metric] for r in mine]
        x = statistics.fmean(r["params"] for r in mine)
        ax.errorbar([x], [statistics.fmean(values)], yerr=[statistics.pstdev(values)], fmt="o", capsize=3,
                    label=model)
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel(metric)
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
    fig, axes = subplots(len(signals), len(models) + 1, squeeze=False,
                             figsize=(1.9 * (len(models) + 1), 2.0 * len(signals)))
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
            if i == 0:
                ax.set_title(title, fontsize=8)
        axes[i][0].text(-0.05, 0.5, Path(signal).stem, transform=axes[i][0].transAxes, rotation=90,
                        ha="right", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path
