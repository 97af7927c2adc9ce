"""Weights files with bad metadata or tensors (through render, export, eval and fit --init) and .inrz
files with foreign headers behind a recomputed checksum (through decode)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from . import files
from .cases import Case
from .workspace import FIT, Profile

WEIGHTS = "run_image/model.safetensors"


def _meta(edit: Any) -> Any:
    return lambda p, ws: files.rewrite_weights(ws.base / WEIGHTS, p, edit=edit)


def _raw(text: str) -> Any:
    return lambda p, ws: files.rewrite_weights(ws.base / WEIGHTS, p, raw_meta=text)


def _tensors(edit: Any) -> Any:
    return lambda p, ws: files.rewrite_weights(ws.base / WEIGHTS, p, tensors=edit)


def _set(path: str, value: Any) -> Any:
    """An edit that sets meta[a][b]... = value (a dotted path)."""
    def edit(meta: dict) -> None:
        *parents, last = path.split(".")
        node = meta
        for key in parents:
            node = node[key]
        node[last] = value
    return edit


def _drop(path: str) -> Any:
    def edit(meta: dict) -> None:
        *parents, last = path.split(".")
        node = meta
        for key in parents:
            node = node[key]
        node.pop(last, None)
    return edit


def _no_inrkit_metadata(path: Path, ws: Any) -> None:
    from safetensors.torch import load_file, save_file

    save_file(load_file(str(ws.base / WEIGHTS)), str(path), metadata={"other": "tool"})


def _huge_header(path: Path, ws: Any) -> None:
    path.write_bytes((2**60).to_bytes(8, "little") + b'{"__metadata__":{}}')


def _first_weight(state: dict) -> str:
    return next(k for k, v in state.items() if v.dim() == 2)


def weights_inputs(profile: Profile) -> list[tuple[str, Any]]:
    import torch

    side = profile.side
    return [
        ("metadata-not-json", _raw("{not json")),
        ("metadata-a-list", _raw("[1, 2, 3]")),
        ("metadata-a-string", _raw('"inrkit"')),
        ("no-model", _meta(_drop("model"))),
        ("no-shape", _meta(_drop("signal.shape"))),
        ("no-signal", _meta(_set("signal", None))),
        ("unknown-model", _meta(_set("model.name", "nosuchnet"))),
        ("negative-width", _meta(_set("model.kwargs.hidden_features", -3))),
        ("huge-width", _meta(_set("model.kwargs.hidden_features", 10**9))),
        ("fractional-width", _meta(_set("model.kwargs.hidden_features", 8.5))),
        ("text-width", _meta(_set("model.kwargs.hidden_features", "8"))),
        ("huge-depth", _meta(_set("model.kwargs.hidden_layers", 10**9))),
        ("unknown-argument", _meta(_set("model.kwargs.bogus", 1))),
        ("shape-with-zero", _meta(_set("signal.shape", [0, 16]))),
        ("shape-huge", _meta(_set("signal.shape", [side, side]))),
        ("shape-one-side", _meta(_set("signal.shape", [16]))),
        ("shape-text", _meta(_set("signal.shape", "16x16"))),
        ("channels-disagree", _meta(_set("signal.channels", 1))),
        ("range-reversed", _meta(_set("signal.data_range", [1.0, 0.0]))),
        ("range-nan", _meta(_set("signal.data_range", [math.nan, 1.0]))),
        ("unknown-kind", _meta(_set("signal.kind", "smell"))),
        ("kind-disagrees", _meta(_set("signal.kind", "audio"))),
        ("foreign-format", _meta(_set("format", "inrkit.weights/99"))),
        ("no-inrkit-metadata", _no_inrkit_metadata),
        ("nan-weights", _tensors(lambda s: {k: torch.full_like(v, math.nan) for k, v in s.items()})),
        ("inf-weights", _tensors(lambda s: {k: torch.full_like(v, math.inf) for k, v in s.items()})),
        ("missing-tensor", _tensors(lambda s: {k: v for k, v in list(s.items())[1:]})),
        ("tensor-wrong-shape", _tensors(lambda s: {**s, _first_weight(s): torch.zeros(3, 3)})),
        ("extra-tensor", _tensors(lambda s: {**s, "bogus.weight": torch.zeros(2)})),
        ("truncated", lambda p, ws: p.write_bytes((ws.base / WEIGHTS).read_bytes()[:200])),
        ("empty", lambda p, ws: p.write_bytes(b"")),
        ("png-named-safetensors", lambda p, ws: p.write_bytes((ws.base / "img.png").read_bytes())),
        ("pickle-named-safetensors", lambda p, ws: files.pickled_torch(p)),
        ("header-length-2-60", _huge_header),
    ]


def _write(make: Any, name: str) -> Any:
    return lambda folder, ws: make(folder / name, ws)


def weights_cases(profile: Profile) -> list[Case]:
    commands = {
        "render": (["render", "w.safetensors", "--out", "r.png"], ()),
        "export": (["export", "w.safetensors", "--out", "m.inrz", "--quiet"], ()),
        "eval": (["eval", "w.safetensors", "img.png", "--json"], ("img.png",)),
        "fit-init": (["fit", "img.png", *FIT, "--init", "w.safetensors", "--out", "out"], ("img.png",)),
    }
    # weights saved without a signal layout are legitimate (save() of a model built without one): they
    # export and initialise fits; only rendering and evaluation need the layout
    usable = {("no-signal", "export"), ("no-signal", "fit-init")}
    return [Case(f"weights/{label}/{command}", argv, needs=needs, make=_write(make, "w.safetensors"),
                 may_succeed=(label, command) in usable, costly=(label, command) in usable)
            for label, make in weights_inputs(profile) for command, (argv, needs) in commands.items()]


# ---- .inrz ----------------------------------------------------------------------------------

def _inrz(edit: Any = None, payload: Any = None, raw: bytes | None = None, version: int | None = None) -> Any:
    return lambda p, ws: files.rewrite_inrz(ws.base / "model.inrz", p, edit=edit, payload=payload, raw_header=raw,
                                            version=version)


def _tensor_entry(index: int, position: int, value: Any) -> Any:
    def edit(header: dict) -> None:
        header["tensors"][index][position] = value
    return edit


def _header_path(path: str, value: Any) -> Any:
    return _set(path, value)


def _bytes_edit(edit: Any) -> Any:
    def make(p: Path, ws: Any) -> None:
        p.write_bytes(edit((ws.base / "model.inrz").read_bytes()))
    return make


def inrz_inputs(profile: Profile) -> list[tuple[str, Any]]:
    side = profile.side
    noise = np.random.default_rng(3).integers(0, 256, 64, dtype=np.uint8).tobytes()
    return [
        ("header-not-json", _inrz(raw=b"{not json")),
        ("header-a-list", _inrz(raw=b"[1, 2]")),
        ("header-null", _inrz(raw=b"null")),
        ("no-model", _inrz(edit=_drop("model"))),
        ("no-tensors", _inrz(edit=_drop("tensors"))),
        ("no-signal", _inrz(edit=_set("signal", None))),
        ("tensor-table-short", _inrz(edit=lambda h: h["tensors"].pop())),
        ("tensor-table-long", _inrz(edit=lambda h: h["tensors"].append(h["tensors"][-1]))),
        ("tensor-table-a-dict", _inrz(edit=_set("tensors", {"a": 1}))),
        ("bits-8-to-1", _inrz(edit=_tensor_entry(0, 2, 1))),
        ("bits-8-to-16", _inrz(edit=_tensor_entry(0, 2, 16))),
        ("bits-8-to-0", _inrz(edit=_tensor_entry(0, 2, 0))),
        ("bits-negative", _inrz(edit=_tensor_entry(0, 2, -8))),
        ("bits-text", _inrz(edit=_tensor_entry(0, 2, "eight"))),
        ("unknown-coder", _inrz(edit=_tensor_entry(0, 1, "nope"))),
        ("unknown-mode", _inrz(edit=_tensor_entry(0, 0, "zz"))),
        ("per-channel-flipped", _inrz(edit=_tensor_entry(0, 3, 1))),
        ("block-length-huge", _inrz(edit=_tensor_entry(0, -1, 10**12))),
        ("block-length-negative", _inrz(edit=_tensor_entry(0, -1, -5))),
        ("block-length-zero", _inrz(edit=_tensor_entry(0, -1, 0))),
        ("entry-too-short", _inrz(edit=lambda h: h["tensors"].__setitem__(0, ["q"]))),
        ("shape-one-side", _inrz(edit=_set("signal.shape", [16]))),
        ("shape-with-zero", _inrz(edit=_set("signal.shape", [0, 16]))),
        ("shape-huge", _inrz(edit=_set("signal.shape", [side, side]))),
        ("shape-text", _inrz(edit=_set("signal.shape", "16x16"))),
        ("unknown-model", _inrz(edit=_set("model.name", "nosuchnet"))),
        ("negative-width", _inrz(edit=_set("model.kwargs.hidden_features", -3))),
        ("width-8-to-16", _inrz(edit=_set("model.kwargs.hidden_features", 16))),
        ("layers-changed", _inrz(edit=_set("model.kwargs.hidden_layers", 1))),
        ("kind-image-to-audio", _inrz(edit=_set("signal.kind", "audio"))),
        ("channels-3-to-1", _inrz(edit=_set("signal.channels", 1))),
        ("quant-bits-8-to-4", _inrz(edit=_set("quant.bits", 4))),
        ("range-nan", _inrz(edit=_set("signal.data_range", [math.nan, 1.0]))),
        ("format-version-99", _inrz(version=99)),
        ("payload-empty", _inrz(payload=lambda b: b"")),
        ("payload-noise", _inrz(payload=lambda b: (noise * (len(b) // 64 + 1))[:len(b)])),
        ("payload-longer", _inrz(payload=lambda b: b + noise)),
        ("magic-wrong", _bytes_edit(lambda b: b"INRX" + b[4:])),
        ("checksum-wrong", _bytes_edit(lambda b: b[:-1] + bytes([b[-1] ^ 0xFF]))),
        ("truncated", _bytes_edit(lambda b: b[: len(b) // 2])),
        ("padded", _bytes_edit(lambda b: b + b"\x00" * 16)),
        ("empty", lambda p, ws: p.write_bytes(b"")),
        ("png-named-inrz", lambda p, ws: p.write_bytes((ws.base / "img.png").read_bytes())),
    ]


def inrz_cases(profile: Profile) -> list[Case]:
    return [Case(f"inrz/{label}/decode", ["decode", "m.inrz", "--out", "d.png"], make=_write(make, "m.inrz"))
            for label, make in inrz_inputs(profile)]
