"""Published protocols as named benchmarks: `inrkit bench --preset NAME --data DIR`.

A preset is one paper's experiment: its signals, its backbones with the settings that experiment
used, and where its published numbers are. It becomes an ordinary spec, so it runs, resumes and
reports like any benchmark (and CLI flags still override it). Each preset has a full protocol, for a
GPU, and a reduced one for a CPU. The reduced one keeps every backbone's settings and schedule
and makes the signal smaller (or uses fewer signals or steps), so the comparison between backbones
keeps its shape. `protocol="auto"` picks the full protocol when the device is a GPU.

Signal paths are globs under a data folder laid out like this project's benchmark data
(`kodak/`, `images/finer_div2k/`, `audio/`, `meshes/`); `--data` points at it.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..models import get_entry
from ..utils import resolve_device

PROTOCOLS = ("auto", "full", "reduced")


@dataclass(frozen=True)
class Protocol:
    """How much of a preset runs.

    Attributes:
        signals: globs under the data folder.
        kinds: per-kind loader settings (crop, size, eval_res...).
        step_scale: fraction of each step-counted schedule that runs; schedules counted in epochs are
            kept whole, since a smaller signal already means fewer steps per epoch.
        note: what was reduced, in words, for the report.
    """

    signals: tuple[str, ...]
    kinds: dict[str, dict[str, Any]] = field(default_factory=dict)
    step_scale: float = 1.0
    note: str = "the authors' protocol"


@dataclass(frozen=True)
class Preset:
    """One paper's experiment.

    Attributes:
        name: what `--preset` takes.
        title: the experiment in a few words.
        source: the paper table and the script behind it.
        models: model tables as a spec takes them (name, label, constructor overrides, `fit` settings).
        full: the published protocol.
        reduced: the CPU protocol.
        published: where the published numbers come from, or why none are shown.
        kind: read every signal as this kind (meshes: "occupancy" or "sdf").
    """

    name: str
    title: str
    source: str
    models: tuple[dict[str, Any], ...]
    full: Protocol
    reduced: Protocol
    published: str
    kind: str | None = None


def _sl2a_baseline(name: str, lr: float, batch: int, **overrides: Any) -> dict[str, Any]:
    """A baseline row of SL²A's Table 1: train.py's Adam, 501 epochs decaying to 0.1x, its lr and batch,
    and its loader's per-image min-max targets."""
    fit = {"epochs": 501, "steps": None, "lr": lr, "batch_size": batch, "lr_decay": 0.1, "targets": "minmax"}
    return {"name": name, "label": name, "hidden_layers": 3, **overrides, "fit": fit}


_DIV2K = "images/finer_div2k/train_data/*.png"
PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("sl2a-div2k", "SL²A Table 1: DIV2K 512² image fitting, six backbones",
           "SL²A-INR (ICCV 2025) Table 1; SL2A-INR train.py and its baseline settings",
           (_sl2a_baseline("siren", 1e-3, 65536),
            _sl2a_baseline("gauss", 1e-4, 1024, sigma=30.0),
            _sl2a_baseline("relu_pe", 1e-3, 1024),
            _sl2a_baseline("wire", 1e-3, 65536, first_omega_0=30.0, hidden_omega_0=30.0, sigma=30.0),
            {"name": "finer_sl2a"}, {"name": "sl2a"}),
           full=Protocol((_DIV2K,)),
           reduced=Protocol((_DIV2K.replace("*", "0[05]"),), {"image": {"size": 128}},
                            note="images 00 and 05 resized to 128² (train.py's own default factor 4); "
                                 "every schedule whole"),
           published="SL²A's Table 1 is over FINER's 16 DIV2K *test* images; this folder holds the training "
                     "set of the same kind, so the published columns are a landmark, not a match"),
    Preset("siren-image", "SIREN image fitting: cameraman 256², 10,000 full-batch steps",
           "SIREN (NeurIPS 2020) Fig. 1; siren experiment_scripts/train_img.py",
           ({"name": "siren"},),
           full=Protocol(("images/camera_skimage_cc0.png",), {"image": {"size": 256}}),
           reduced=Protocol(("images/camera_skimage_cc0.png",), {"image": {"size": 128}}, step_scale=0.1,
                            note="128² and 1,000 of the 10,000 steps"),
           published="SIREN reports image fitting as curves, and its cameraman is not this CC0 photograph: "
                     "no published number to put beside it"),
    Preset("siren-audio", "SIREN audio fitting: Bach, 9,001 full-batch steps",
           "SIREN (NeurIPS 2020) Sec. 4.1; siren experiment_scripts/train_audio.py",
           ({"name": "siren"},),
           full=Protocol(("audio/gt_bach.wav",), {"audio": {"normalize": True}}),
           reduced=Protocol(("audio/gt_bach.wav",), {"audio": {"normalize": True}}, step_scale=0.1,
                            note="900 of the 9,001 steps"),
           published="SIREN reports audio as waveforms and curves: no published number to put beside it"),
    Preset("wire-occupancy", "WIRE occupancy: a Stanford scan as a voxel grid, WIRE against its baselines",
           "WIRE (CVPR 2023) occupancy experiment; wire wire_occupancy.py",
           ({"name": "wire"}, {"name": "gauss"}, {"name": "siren"}, {"name": "relu_pe"}),
           full=Protocol(("meshes/armadillo*.obj",), {"occupancy": {"eval_res": 512}}),
           reduced=Protocol(("meshes/armadillo*.obj",), {"occupancy": {"eval_res": 128}},
                            note="IoU on a 128³ grid instead of 512³; every schedule whole"),
           published="WIRE's paper uses the Thai statue (not in this data) and its table was not transcribed: "
                     "no published number to put beside it",
           kind="occupancy"),
    Preset("fkan-kodak", "FKAN image fitting: Kodak kodim03 at full size, the notebook's schedule",
           "FKAN (arXiv 2409.09323) FKAN_INR.ipynb",
           ({"name": "fkan"}, {"name": "siren"}),
           full=Protocol(("kodak/kodim03.png",)),
           reduced=Protocol(("kodak/kodim03.png",), {"image": {"crop": 128}}, step_scale=0.1,
                            note="the centre 128² crop; FKAN's 500 epochs whole, SIREN 1,000 of its 10,000 steps"),
           published="the notebook's own run on kodim03 printed 43.86 dB (a maximum over epochs of batch "
                     "losses, not a clean evaluation); the paper's table was not transcribed"),
)}


def get_preset(name: str) -> Preset:
    """The preset called `name`; an unknown name fails with the list.

    Example:
        >>> get_preset("sl2a-div2k").full.signals
        ('images/finer_div2k/train_data/*.png',)
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]


def choose_protocol(preset: Preset, protocol: str, device: str) -> tuple[str, Protocol]:
    """("full" | "reduced", the protocol): `auto` runs the full protocol only on a GPU."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    if protocol == "auto":
        protocol = "full" if resolve_device(device).type == "cuda" else "reduced"
    return protocol, preset.full if protocol == "full" else preset.reduced


def preset_spec(name: str, data: str | Path, protocol: str = "auto", device: str = "auto",
                steps: int | None = None) -> dict[str, Any]:
    """The spec (TOML layout, for `make_spec`) that runs preset `name` on the data under `data`.

    `steps` replaces every backbone's schedule length (a quick look; the settings stay the preset's).

    Example:
        >>> spec = preset_spec("siren-image", "../shared/data", protocol="reduced")  # doctest: +SKIP
        >>> spec["models"][0]["fit"]["steps"]  # doctest: +SKIP
        1000
    """
    preset = get_preset(name)
    chosen, proto = choose_protocol(preset, protocol, device)
    signals = [str(Path(data) / pattern) for pattern in proto.signals]
    missing = [s for s in signals if not glob.glob(s)]
    if missing:
        raise ConfigError(f"preset {name} needs {', '.join(missing)}; point --data at a folder laid out like "
                          "the benchmark data (kodak/, images/, audio/, meshes/)")
    kind = preset.kind or _only_kind(proto)
    models = [_scaled(dict(m), kind, proto.step_scale, steps) for m in preset.models]
    spec: dict[str, Any] = {"signals": signals, "models": models, "device": device,
                            "out": f"bench-{name}-{chosen}", **({"kind": preset.kind} if preset.kind else {})}
    return {**spec, **{k: dict(v) for k, v in proto.kinds.items()}}


def describe(name: str, protocol: str, data: str | Path) -> str:
    """A few lines of Markdown saying which protocol ran, on what, and where the published numbers are."""
    preset = get_preset(name)
    proto = preset.full if protocol == "full" else preset.reduced
    return (f"# Preset {name}: {preset.title}\n\n- Source: {preset.source}\n"
            f"- Protocol: **{protocol}** ({proto.note}) on {', '.join(proto.signals)} under {data}\n"
            f"- Published numbers: {preset.published}\n")


def _only_kind(proto: Protocol) -> str:
    return next(iter(proto.kinds), "image")


def _scaled(model: dict[str, Any], kind: str, scale: float, steps: int | None) -> dict[str, Any]:
    """Give a model without its own length the recipe's steps times `scale` (epochs stay whole)."""
    fit = {k: v for k, v in model.get("fit", {}).items() if steps is None or k not in ("steps", "epochs")}
    if steps is not None:
        fit["steps"] = steps
    elif "steps" not in fit and "epochs" not in fit:
        recipe = get_entry(model["name"]).recipe(kind)
        fit["steps"] = max(1, round(recipe.steps * scale)) if recipe.steps else None
    return {**model, "label": model.get("label", model["name"]), "fit": fit}
