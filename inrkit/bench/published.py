"""Published reference numbers, shown next to a benchmark's own so the comparison is on one page.

Only numbers copied from a paper's own table (see /work/shared/reference/models-fkan-sl2a-neurbf.md
§2.6). They were measured under the authors' protocol (their steps, widths, metric code), so they
are a landmark, not a like-for-like result. Keys are inrkit model names ("relu_pe" is the papers'
"ReLU+P.E." baseline).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    """One column of published numbers.

    Attributes:
        kinds: signal kinds it applies to.
        metric: the metric the values are in.
        match: a substring of a signal's path that says the benchmark ran on this data.
        label: the column title.
        source: where the numbers come from.
        values: inrkit model name -> published value.
    """

    kinds: tuple[str, ...]
    metric: str
    match: str
    label: str
    source: str
    values: dict[str, float]


_SL2A = "SL²A-INR (ICCV 2025) project page"
# SL²A's tables ran FINER with their own baseline settings: inrkit's `finer_sl2a`
_DIV2K_PSNR = {"finer_sl2a": 36.35, "gauss": 34.96, "relu_pe": 35.27, "siren": 33.47, "wire": 30.63, "sl2a": 36.88}
_DIV2K_SSIM = {"finer_sl2a": 0.924, "gauss": 0.914, "relu_pe": 0.916, "siren": 0.896, "wire": 0.818, "sl2a": 0.933}
_SHAPES = {  # IoU, signed distance fields of Stanford scans: FINER, Gauss, ReLU+P.E., SIREN, WIRE, SL²A
    "armadillo": (0.9899, 0.9768, 0.9870, 0.9895, 0.9893, 0.9983),
    "dragon": (0.9895, 0.9968, 0.9763, 0.9409, 0.9921, 0.9989),
    "lucy": (0.9832, 0.9601, 0.9760, 0.9721, 0.9707, 0.9988),
    "thai": (0.9848, 0.9900, 0.9406, 0.9799, 0.9900, 0.9986),
    "bearded": (0.9943, 0.9932, 0.9939, 0.9948, 0.9911, 0.9987),
}
_SHAPE_MODELS = ("finer_sl2a", "gauss", "relu_pe", "siren", "wire", "sl2a")

REFERENCES: list[Reference] = [
    Reference(("image",), "psnr", "div2k", "published PSNR (DIV2K 512², avg of 16)",
              f"{_SL2A}, Table 1; ~200k params (WIRE 91.6k, SL²A 330k)", _DIV2K_PSNR),
    Reference(("image",), "ssim", "div2k", "published SSIM (DIV2K 512², avg of 16)",
              f"{_SL2A}, Table 1", _DIV2K_SSIM),
    *[Reference(("sdf", "occupancy", "shape"), "iou", name, f"published IoU ({name})", f"{_SL2A}, Table 2",
                dict(zip(_SHAPE_MODELS, values))) for name, values in _SHAPES.items()],
]


def references_for(kind: str, signals: list[str]) -> list[Reference]:
    """The reference columns that apply to a kind benchmarked on these signal paths.

    Example:
        >>> [r.metric for r in references_for("image", ["/data/finer_div2k/train_data/00.png"])]
        ['psnr', 'ssim']
    """
    paths = [s.lower() for s in signals]
    return [r for r in REFERENCES if kind in r.kinds and any(r.match in p for p in paths)]
