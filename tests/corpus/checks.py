"""Is an output what it claims to be? Bytes that match the suffix, pictures and sounds that are not
one flat value (a NaN model renders all black), JSON without NaN, and the case's own checks."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

MAGIC: dict[str, Callable[[bytes], bool]] = {
    ".png": lambda b: b.startswith(b"\x89PNG\r\n\x1a\n"),
    ".jpg": lambda b: b.startswith(b"\xff\xd8"),
    ".jpeg": lambda b: b.startswith(b"\xff\xd8"),
    ".tif": lambda b: b[:4] in (b"II*\x00", b"MM\x00*"),
    ".tiff": lambda b: b[:4] in (b"II*\x00", b"MM\x00*"),
    ".bmp": lambda b: b.startswith(b"BM"),
    ".webp": lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP",
    ".exr": lambda b: b.startswith(b"\x76\x2f\x31\x01"),
    ".wav": lambda b: b[:4] == b"RIFF" and b[8:12] == b"WAVE",
    ".flac": lambda b: b.startswith(b"fLaC"),
    ".ogg": lambda b: b.startswith(b"OggS"),
    ".gif": lambda b: b[:4] == b"GIF8",
    ".mp4": lambda b: b[4:8] == b"ftyp",
    ".mov": lambda b: b[4:8] in (b"ftyp", b"moov", b"wide", b"mdat"),
    ".m4v": lambda b: b[4:8] == b"ftyp",
    ".avi": lambda b: b[:4] == b"RIFF" and b[8:11] == b"AVI",
    ".mkv": lambda b: b.startswith(b"\x1aE\xdf\xa3"),
    ".ply": lambda b: b.startswith(b"ply"),
    ".off": lambda b: b.lstrip().startswith(b"OFF"),
    ".glb": lambda b: b.startswith(b"glTF"),
    ".stl": lambda b: len(b) >= 84,
    ".obj": lambda b: _is_text(b),
    ".xyz": lambda b: _is_text(b),
    ".inrz": lambda b: b.startswith(b"INRZ"),
    ".safetensors": lambda b: len(b) > 8 and b[8:9] == b"{",
    ".npy": lambda b: b.startswith(b"\x93NUMPY"),
    ".json": lambda b: _is_text(b),
    ".csv": lambda b: _is_text(b),
    ".md": lambda b: _is_text(b),
    ".toml": lambda b: _is_text(b),
}
IMAGES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def _is_text(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in data


def _flat_image(path: Path) -> str | None:
    import imageio.v3 as iio

    try:
        array = np.asarray(iio.imread(path))
    except Exception as exc:
        return f"{path.name} does not decode ({type(exc).__name__})"
    if array.size and array.min() == array.max() and array.size > 4:
        return f"{path.name} is one flat value ({array.flat[0]}) over {array.shape}"
    return None


def _flat_sound(path: Path) -> str | None:
    import soundfile as sf

    try:
        data, _ = sf.read(path)
    except Exception as exc:
        return f"{path.name} does not decode ({type(exc).__name__})"
    if not np.isfinite(data).all():
        return f"{path.name} holds non-finite samples"
    if data.size and np.ptp(data) == 0:
        return f"{path.name} is silent ({data.size} equal samples)"
    return None


def _bad_json(path: Path) -> str | None:
    def refuse(token: str) -> float:
        raise ValueError(token)

    try:
        json.loads(path.read_text(), parse_constant=refuse)
    except ValueError as exc:
        return f"{path.name} is not valid JSON or holds {exc}"
    return None


def output_problems(folder: Path, written: list[str], case: object, result: object) -> list[str]:
    """Problems with the files a successful command wrote (relative paths under `folder`)."""
    problems = []
    for rel in written:
        path = folder / rel
        if not path.is_file() or path.name.startswith("."):
            continue
        suffix = path.suffix.lower()
        data = path.read_bytes()
        check = MAGIC.get(suffix)
        if check is not None and not check(data):
            problems.append(f"{rel} does not hold {suffix} bytes (starts {data[:8]!r})")
            continue
        if suffix in IMAGES and not getattr(case, "constant_ok", False):
            problems.append(_flat_image(path))
        elif suffix == ".wav" and not getattr(case, "constant_ok", False):
            problems.append(_flat_sound(path))
        elif suffix == ".json":
            problems.append(_bad_json(path))
    verify = getattr(case, "verify", None)
    if verify is not None:
        problems.extend(verify(folder, result))
    if (folder / "PICKLE-EXECUTED").exists():
        problems.append("a pickle payload was executed")
    return [p for p in problems if p]
