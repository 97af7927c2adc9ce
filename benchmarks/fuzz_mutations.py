"""Mutations of .inrz and weights files for benchmarks/fuzz_files.py: structured JSON edits and raw byte edits.

Each `mutate_*` takes a valid file's bytes and returns (mutated bytes, a description, whether the tensor
payload is unchanged). .inrz mutations recompute the lengths and the CRC, so the checksum never
catches them: only inrkit's own checks stand between a mutation and the decoder.
"""

from __future__ import annotations

import json
import math
import random
import struct
import zlib
from typing import Any

from inrkit.export.inrz import PREFIX, _deflate, _inflate

HUGE = (2**31, 2**63, 10**30, 1e308, 16000, 1 << 24)
ODD = (float("nan"), float("inf"), -float("inf"), -1, 0, 1, 0.5, True, False, None, "", "x", [], {}, [1, 2], {"a": 1})


# ---- structured JSON mutations -------------------------------------------------------------------------------


def _slots(node: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key) in a JSON tree: the places a mutation can hit."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        out.append((node, key))
        _slots(child, out)
    return out


def _new_value(rng: random.Random, old: Any) -> Any:
    """A replacement for `old`: a type swap, an odd value, a huge or negative number, a nearby edit."""
    choice = rng.randrange(6)
    if choice == 0:
        return rng.choice(ODD)
    if choice == 1:
        return rng.choice(HUGE) * rng.choice((1, -1))
    if isinstance(old, bool):
        return not old if choice == 2 else int(old)
    if isinstance(old, int):
        return rng.choice((old + 1, old - 1, old * 2, old // 2, -old, float(old), old + 0.5, str(old), 0))
    if isinstance(old, float):
        return rng.choice((old * 2, -old, old + 1e-3, 0.0, math.nan, int(old), str(old)))
    if isinstance(old, str):
        return rng.choice(("", old.upper(), old[:-1], old + "x", "siren", "ffn", "image", "audio", "zlib",
                           "lzma", "ans", "gauss", "pack", "raw", "q", "f16", 7))
    if isinstance(old, list):
        edited = list(old)
        if edited and choice == 2:
            edited.pop(rng.randrange(len(edited)))
        elif edited and choice == 3:
            edited.append(edited[-1])
        elif edited and choice == 4:
            edited = edited[::-1]
        else:
            edited.insert(0, rng.choice((0, -1, 16, 16000, "x")))
        return edited
    return rng.choice((None, [], "x", 0))


def mutate_json(rng: random.Random, tree: Any) -> tuple[Any, str]:
    """One structured edit of a JSON object (the tree is copied); returns it and a description."""
    tree = json.loads(json.dumps(tree))
    slots = _slots(tree, [])
    if not slots:
        return tree, "empty"
    node, key = rng.choice(slots)
    action = rng.randrange(8)
    if action == 0:
        del node[key]
        return tree, f"delete {key!r}"
    if action == 1 and isinstance(node, dict):
        node[rng.choice(("extra", "kwargs", "x" * 10, "model"))] = rng.choice(ODD + HUGE)
        return tree, "extra key"
    old = node[key]
    node[key] = _new_value(rng, old)
    return tree, f"{key!r}: {_short(old)} -> {_short(node[key])}"


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
    return text if len(text) <= 30 else text[:27] + "..."


def _dump(tree: Any, rng: random.Random) -> tuple[bytes, str]:
    """The JSON text of `tree`; now and then truncated, or replaced by nesting deeper than the parser's stack."""
    text = json.dumps(tree, separators=(",", ":")).encode()
    roll = rng.random()
    if roll < 0.04:
        cut = rng.randrange(len(text))
        return text[:cut], f", JSON cut at {cut}"
    if roll < 0.06:
        return b"[" * 50_000 + b"]" * 50_000, ", JSON replaced by 50,000 nested lists"
    return text, ""


# ---- .inrz mutations (checksum recomputed) ------------------------------------------------------------------


def _split_inrz(data: bytes) -> tuple[int, bytes, bytes]:
    _, version, head_len, _, _ = PREFIX.unpack_from(data)
    body = data[PREFIX.size:]
    return version, body[:head_len], body[head_len:]


def _join_inrz(version: int, head: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(head + payload)
    return PREFIX.pack(b"INRZ", version, len(head), len(payload), crc) + head + payload


def _bytes_edit(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """A raw edit: flip, zero, truncate, insert or duplicate bytes."""
    if not data:
        return bytes(rng.randrange(1, 64)), "fill empty"
    data, i = bytearray(data), rng.randrange(len(data))
    action = rng.randrange(5)
    if action == 0:
        data[i] ^= 1 << rng.randrange(8)
        return bytes(data), f"flip bit at {i}"
    if action == 1:
        data[i:i + 8] = bytes(len(data[i:i + 8]))
        return bytes(data), f"zero 8 bytes at {i}"
    if action == 2:
        return bytes(data[:i]), f"truncate at {i}"
    if action == 3:
        return bytes(data[:i] + bytes([rng.randrange(256)]) * rng.randrange(1, 9) + data[i:]), f"insert at {i}"
    data[i] = 0xFF
    return bytes(data), f"0xff at {i}"


def mutate_inrz(rng: random.Random, data: bytes) -> tuple[bytes, str, bool]:
    """A mutated .inrz with a valid checksum; returns it, a description and whether the payload is unchanged."""
    version, head, payload = _split_inrz(data)
    roll = rng.random()
    if roll < 0.5:
        tree, what = mutate_json(rng, json.loads(_inflate(head)))
        text, how = _dump(tree, rng)
        return _join_inrz(version, _deflate(text), payload), f"header {what}{how}", True
    if roll < 0.75:  # edits aimed at what the payload can contradict: table entries, quant, shape, block sizes
        edit = rng.choice((_shift_blocks, _edit_entry, _edit_entry, _edit_quant, _edit_shape))
        tree, what = edit(rng, json.loads(_inflate(head)))
        return _join_inrz(version, _deflate(json.dumps(tree).encode()), payload), f"header {what}", True
    if roll < 0.95:
        payload, what = _bytes_edit(rng, payload)
        return _join_inrz(version, head, payload), f"payload {what}", False
    head, what = _bytes_edit(rng, head)
    return _join_inrz(version, head, payload), f"deflated header {what}", True


def _shift_blocks(rng: random.Random, tree: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Move bytes between two neighbouring blocks (the total still matches the payload)."""
    table = tree["tensors"]
    i = rng.randrange(max(1, len(table) - 1))
    j, step = min(i + 1, len(table) - 1), rng.choice((1, 2, 4, 6, 8))
    table[i][-1] += step
    table[j][-1] -= step
    return tree, f"block sizes {i}+{step}, {j}-{step}"


def _edit_entry(rng: random.Random, tree: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """One field of one tensor-table entry: its bits, coder, mode or per-channel flag."""
    i = rng.randrange(len(tree["tensors"]))
    entry = tree["tensors"][i]
    field = rng.randrange(4)
    old = entry[field]
    choices = [("raw", "f16", "q"), ("pack", "zlib", "lzma", "ans", "gauss", "raw"), (1, 2, 4, 7, 9, 15, 16, 17),
               (0, 1)][field]
    entry[field] = rng.choice(choices + ((old - 1, old + 1) if field == 2 else ()))
    return tree, f"tensors[{i}][{field}] {old!r} -> {entry[field]!r}"


def _edit_quant(rng: random.Random, tree: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The quant record: bits, buffer bits or per-channel flag (the table then disagrees with it)."""
    key = rng.choice(("bits", "buffer_bits", "per_channel"))
    old = tree["quant"][key]
    tree["quant"][key] = (not old) if key == "per_channel" else rng.choice((None, 2, 7, 8, 9, 16))
    return tree, f"quant.{key} {old!r} -> {tree['quant'][key]!r}"


def _edit_shape(rng: random.Random, tree: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The signal shape: a side dropped, added, zeroed or made huge."""
    shape = tree["signal"]["shape"]
    old = list(shape)
    choice = rng.randrange(4)
    if choice == 0 and shape:
        shape.pop()
    elif choice == 1:
        shape.append(16)
    elif choice == 2 and shape:
        shape[0] = 0
    elif shape:
        shape[0] *= 1000
    return tree, f"signal.shape {old} -> {shape}"


# ---- weights (safetensors) mutations --------------------------------------------------------------------------


def _split_st(data: bytes) -> tuple[dict[str, Any], bytes]:
    (n,) = struct.unpack_from("<Q", data)
    return json.loads(data[8:8 + n]), data[8 + n:]


def _join_st(table: Any, body: bytes, raw: bytes | None = None) -> bytes:
    head = raw if raw is not None else json.dumps(table, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + body


def mutate_weights(rng: random.Random, data: bytes) -> tuple[bytes, str, bool]:
    """A mutated weights file; returns it, a description and whether the tensor bytes are unchanged."""
    table, body = _split_st(data)
    roll = rng.random()
    if roll < 0.6:
        meta = json.loads(table["__metadata__"]["inrkit"])
        meta, what = mutate_json(rng, meta)
        text, how = _dump(meta, rng)
        table["__metadata__"]["inrkit"] = text.decode()
        return _join_st(table, body), f"metadata {what}{how}", True
    if roll < 0.8:
        table, what = mutate_json(rng, table)
        return _join_st(table, body), f"tensor table {what}", True
    if roll < 0.95:
        body, what = _bytes_edit(rng, body)
        return _join_st(table, body), f"tensor bytes {what}", False
    raw, what = _bytes_edit(rng, json.dumps(table).encode())
    return _join_st(None, body, raw), f"header bytes {what}", True
