"""The .inrz header's own fields (quantisation, tensor table), checked against the model and the payload.

The shared record (model, signal, version) is checked by `schema`; this module checks what only an
.inrz header declares, before a single block is decoded: the quantisation settings, and for each
state-dict tensor its mode, coder, bit width, per-channel flag and block length. Each entry must be
exactly what the encoder writes for that tensor of the rebuilt model under the header's quantisation,
and the block lengths must add up to the payload. A header that disagrees with its payload or with
itself (a tensor's bits 8 -> 7, a flipped per-channel flag) is refused, never decoded into something else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .entropy import BYTE_CODERS, CODERS
from .quantize import channel_rows
from .schema import fail, integer, mapping, number, short, text

# mode -> coders it may use; "qu": quantised, coded as the change from the seeded init (`origin`)
MODES = {"raw": BYTE_CODERS, "f16": BYTE_CODERS, "q": CODERS, "qu": CODERS}


@dataclass(frozen=True)
class Quant:
    """The header's `quant` object: how the encoder stored trained weights and float buffers."""

    bits: int | None
    buffer_bits: int | None
    per_channel: bool
    layer_bits: dict[str, int]


@dataclass(frozen=True)
class Entry:
    """One row of the tensor table: [mode, coder, bits, per_channel, block bytes]."""

    mode: str
    coder: str
    bits: int
    per_channel: bool
    size: int


def _bits(value: Any, source: str, field: str) -> int | None:
    return None if value is None else integer(value, source, field, 2, 16)


def check_quant(value: Any, source: str) -> Quant:
    """The `quant` object: bit widths 2-16 or null (float16), a per-channel flag, a prune fraction.

    Example:
        >>> check_quant({"bits": 1, "per_channel": False, "prune": 0.0, "buffer_bits": 16}, "f")
        Traceback (most recent call last):
        ...
        inrkit.errors.ExportError: f: quant.bits: must be from 2 to 16, got 1
    """
    quant = mapping(value, source, "quant")
    per_channel = quant.get("per_channel", False)
    if not isinstance(per_channel, bool):
        raise fail(source, "quant.per_channel", f"must be true or false, got {short(per_channel)}")
    prune = number(quant.get("prune", 0.0), source, "quant.prune")
    if not 0 <= prune < 1:
        raise fail(source, "quant.prune", f"must be a fraction in [0, 1), got {prune:g}")
    layers = mapping(quant.get("layer_bits", {}), source, "quant.layer_bits")
    layer_bits = {name: integer(b, source, f"quant.layer_bits.{name}", 2, 16) for name, b in layers.items()}
    return Quant(_bits(quant.get("bits"), source, "quant.bits"),
                 _bits(quant.get("buffer_bits"), source, "quant.buffer_bits"), per_channel, layer_bits)


def _entry(value: Any, source: str, field: str, payload: int) -> Entry:
    if not isinstance(value, list) or len(value) != 5:
        raise fail(source, field, f"must be [mode, coder, bits, per_channel, bytes], got {short(value)}")
    mode = text(value[0], source, f"{field} mode", MODES)
    coder = text(value[1], source, f"{field} coder", MODES[mode])
    bits = integer(value[2], source, f"{field} bits", 0, 16)
    per_channel = integer(value[3], source, f"{field} per_channel", 0, 1)
    return Entry(mode, coder, bits, bool(per_channel), integer(value[4], source, f"{field} bytes", 0, payload))


def expected_entry(name: str, like: torch.Tensor, role: str, quant: Quant, version: int = 2) -> tuple[str, int, bool]:
    """(mode, bits, per_channel) the encoder of format `version` writes for tensor `name` of role 'weight',
    'buffer' or 'raw' (format 1 gave a complex vector one scale per (real, imaginary) pair)."""
    if role == "raw":
        return "raw", 0, False
    bits = quant.layer_bits.get(name, quant.bits) if role == "weight" else quant.buffer_bits
    if bits is None:
        return "f16", 16, False
    has_rows = like.dim() + int(like.is_complex()) > 1 if version == 1 else channel_rows(like)
    return "q", bits, quant.per_channel and role == "weight" and has_rows


def check_origin(value: Any, source: str) -> dict[str, int] | None:
    """The header's optional `origin`: {"seed": the init's seed, "crc": CRC32 of the init's tensors}.

    Example:
        >>> check_origin({"seed": -1, "crc": 0}, "f")
        Traceback (most recent call last):
        ...
        inrkit.errors.ExportError: f: origin.seed: must be from 0 to ..., got -1
    """
    if value is None:
        return None
    value = mapping(value, source, "origin")
    return {"seed": integer(value.get("seed"), source, "origin.seed"),
            "crc": integer(value.get("crc"), source, "origin.crc", 0, 2**32 - 1)}


def check_table(value: Any, state: dict[str, torch.Tensor], roles: dict[str, str], quant: Quant,
                payload: int, source: str, origin: bool = False, version: int = 2) -> list[Entry]:
    """The tensor table, one entry per state-dict tensor, each as the encoder writes it; lengths sum to the payload.

    Example:
        >>> state = {"w": torch.zeros(4, 3)}
        >>> q = check_quant({"bits": 8, "per_channel": False, "prune": 0.0, "buffer_bits": 16}, "f")
        >>> check_table([["q", "pack", 7, 0, 10]], state, {"w": "weight"}, q, 10, "f")
        Traceback (most recent call last):
        ...
        inrkit.errors.ExportError: f: tensors[0] (w): declares q, 7 bits, per_channel 0; the header's quant \
means q, 8 bits, per_channel 0
    """
    if not isinstance(value, list):
        raise fail(source, "tensors", f"must be a list, got {short(value)}")
    if len(value) != len(state):
        raise fail(source, "tensors", f"holds {len(value)} entries, the model has {len(state)} tensors")
    unknown = set(quant.layer_bits) - {n for n, r in roles.items() if r == "weight"}
    if unknown:
        raise fail(source, "quant.layer_bits", f"names no trained tensor of the model: {sorted(unknown)[:3]}")
    entries = []
    for i, (item, (name, like)) in enumerate(zip(value, state.items())):
        entry = _entry(item, source, f"tensors[{i}] ({name})", payload)
        mode, bits, per_channel = expected_entry(name, like, roles[name], quant, version)
        if entry.mode == "qu" and mode == "q" and roles[name] == "weight":
            if not origin:
                raise fail(source, f"tensors[{i}] ({name})", "is coded as a change from an initialisation the "
                           "header does not name (no origin)")
            mode = "qu"
        if (entry.mode, entry.bits, entry.per_channel) != (mode, bits, per_channel):
            raise fail(source, f"tensors[{i}] ({name})",
                       f"declares {entry.mode}, {entry.bits} bits, per_channel {int(entry.per_channel)}; "
                       f"the header's quant means {mode}, {bits} bits, per_channel {int(per_channel)}")
        entries.append(entry)
    total = sum(e.size for e in entries)
    if total != payload:
        raise fail(source, "tensors", f"blocks add up to {total:,} bytes, the payload holds {payload:,}")
    return entries
