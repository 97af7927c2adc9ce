"""Bytes of bad or unusual files: damaged signals, lying headers, foreign .inrz headers, bad bench stores.

Every maker writes one small file and returns its path. Sizes that should be refused are *declared*
in headers, never stored, so a file that claims 12000×12000 pixels is a few kilobytes.
"""

from __future__ import annotations

import json
import sqlite3
import struct
import zlib
from pathlib import Path

import numpy as np


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(path: Path, side: int) -> Path:
    """A valid-looking grey PNG declaring side × side pixels, with 16 rows of zeros stored."""
    rows = zlib.compress(b"\x00" * (side + 1) * 16, 9)
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", rows)
                     + png_chunk(b"IEND", b""))
    return path


def zero_size_png(path: Path) -> Path:
    """A PNG whose header declares 0 × 16 pixels."""
    header = struct.pack(">IIBBBBB", 0, 16, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IEND", b""))
    return path


def bomb_gif(path: Path, side: int) -> Path:
    """A GIF whose screen and one frame declare side × side pixels, holding a single LZW clear code."""
    side = min(side, 65535)
    screen = b"GIF89a" + struct.pack("<HHBBB", side, side, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, side, side, 0) + b"\x02\x02\x44\x01\x00"
    path.write_bytes(screen + frame + b"\x3b")
    return path


def wav_header(path: Path, declared_frames: int, stored_frames: int, rate: int = 8000) -> Path:
    """A 16-bit mono WAV whose header declares `declared_frames` frames while `stored_frames` follow."""
    data = (np.sin(np.arange(stored_frames) / 7.0) * 12000).astype("<i2").tobytes()
    size = min(declared_frames * 2, 2**32 - 1 - 36)
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    head = b"RIFF" + struct.pack("<I", 36 + size) + b"WAVEfmt " + fmt + b"data" + struct.pack("<I", size)
    path.write_bytes(head + data)
    return path


def huge_ply(path: Path, vertices: int) -> Path:
    """An ASCII PLY header declaring `vertices` vertices, followed by three."""
    path.write_text(f"ply\nformat ascii 1.0\nelement vertex {vertices}\nproperty float x\nproperty float y\n"
                    "property float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n"
                    "0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")
    return path


def huge_npy(path: Path, side: int) -> Path:
    """A .npy header declaring a side³ float32 volume, with 64 bytes of data."""
    header = repr({"descr": "<f4", "fortran_order": False, "shape": (side, side, side)}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\x00" * 64)
    return path


class Planted:
    """A pickle payload that leaves a marker file if it is ever unpickled (it must never be)."""

    def __reduce__(self) -> tuple:
        return (Path.write_text, (Path("PICKLE-EXECUTED"), "a file unpickled a payload"))


def pickled_npy(path: Path) -> Path:
    np.save(path, np.array([Planted()], dtype=object), allow_pickle=True)
    return path


def pickled_torch(path: Path) -> Path:
    import pickle

    path.write_bytes(pickle.dumps({"model": Planted()}))
    return path


def cube_obj(path: Path, scale: float = 0.5, nan: bool = False, faces: bool = True) -> Path:
    """A closed cube mesh (or its vertices only, or with a NaN coordinate) as OBJ text."""
    corners = [(x, y, z) for x in (-scale, scale) for y in (-scale, scale) for z in (-scale, scale)]
    lines = [f"v {x} {y} {z}" for x, y, z in corners]
    if nan:
        lines[0] = "v nan 0 0"
    quads = [(1, 2, 4, 3), (5, 7, 8, 6), (1, 5, 6, 2), (3, 4, 8, 7), (1, 3, 7, 5), (2, 6, 8, 4)]
    if faces:
        lines += [f"f {a} {b} {c}\nf {a} {c} {d}" for a, b, c, d in quads]
    path.write_text("\n".join(lines) + "\n")
    return path


# ---- weights files: safetensors with rewritten metadata -------------------------------------

def rewrite_weights(source: Path, target: Path, edit: object = None, tensors: object = None,
                    raw_meta: str | None = None) -> Path:
    """Copy a weights file, with `edit(meta)` applied to its metadata, `tensors(dict)` to its tensors,
    or the metadata replaced by the text `raw_meta`."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(source), framework="pt") as f:
        meta = json.loads(f.metadata()["inrkit"])
        state = {k: f.get_tensor(k) for k in f.keys()}
    if callable(edit):
        meta = _edited(meta, edit)
    if callable(tensors):
        state = _edited(state, tensors)
    text = raw_meta if raw_meta is not None else json.dumps(meta)
    save_file(state, str(target), metadata={"inrkit": text})
    return target


def _edited(value: object, edit: object) -> object:
    """`edit` may change `value` in place (returning None) or return a replacement."""
    result = edit(value)  # type: ignore[operator]
    return value if result is None else result


# ---- .inrz files: foreign headers behind a recomputed checksum ------------------------------

PREFIX = struct.Struct("<4sBIII")


def inrz_parts(data: bytes) -> tuple[bytes, int, bytes, bytes]:
    """(magic, version, header bytes (deflated), payload) of an .inrz file."""
    magic, version, head_len, payload_len, _ = PREFIX.unpack_from(data)
    body = data[PREFIX.size:]
    return magic, version, body[:head_len], body[head_len:head_len + payload_len]


def inrz_header(data: bytes) -> dict:
    from inrkit.export.inrz import _inflate

    return json.loads(_inflate(inrz_parts(data)[2]))


def inrz_pack(header: object, payload: bytes, version: int | None = None, raw_header: bytes | None = None,
              magic: bytes = b"INRZ") -> bytes:
    """An .inrz file with this header (JSON, or raw text) and payload, and a correct checksum (the prefix
    names `version`, by default the format inrkit writes)."""
    from inrkit.export.inrz import VERSION, _deflate

    version = VERSION if version is None else version
    head = _deflate(raw_header if raw_header is not None else json.dumps(header).encode())
    return PREFIX.pack(magic, version, len(head), len(payload), zlib.crc32(head + payload)) + head + payload


def rewrite_inrz(source: Path, target: Path, edit: object = None, payload: object = None,
                 raw_header: bytes | None = None, version: int | None = None) -> Path:
    """Copy an .inrz with `edit(header)` and `payload(bytes)` applied and the checksum recomputed."""
    data = source.read_bytes()
    header, body = inrz_header(data), inrz_parts(data)[3]
    if callable(edit):
        header = _edited(header, edit)
    if callable(payload):
        body = payload(body)
    target.write_bytes(inrz_pack(header, body, version=version, raw_header=raw_header))
    return target


# ---- bench stores ---------------------------------------------------------------------------

def foreign_sqlite(path: Path) -> Path:
    """A valid SQLite database that is not a results store (a `results` table of the wrong shape)."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE results (x TEXT)")
        db.execute("INSERT INTO results VALUES ('not a result')")
    return path


def truncated_sqlite(path: Path) -> Path:
    """The first 100 bytes of a valid SQLite database (the header survives, the pages do not)."""
    foreign_sqlite(path)
    path.write_bytes(path.read_bytes()[:100])
    return path
