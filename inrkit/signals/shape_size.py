"""How large a shape file is, learnt before it is parsed, so a huge one is refused at once.

A NumPy volume's shape is read from its header. For meshes, PLY and OFF headers and binary STL
declare their counts; OBJ is counted line by line in flat memory; the rest (GLB/glTF, ASCII STL,
.xyz point clouds) are bounded by their size in bytes. The count goes through the one sample limit
(`limits.check_shape`), whose override is `INRKIT_MAX_SAMPLES`.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

from ..errors import SignalError
from ..limits import check_shape
from .sniff import expect_format

_CHUNK = 1 << 24
# the fewest bytes one vertex or face can take in formats whose header does not count them
_MIN_BYTES = {".glb": 12, ".gltf": 12, ".stl": 50, ".xyz": 12}


def check_mesh_size(path: Path) -> int:
    """Refuse a mesh whose vertices + faces exceed the sample limit; returns the count (or its bound).

    Example:
        >>> import tempfile, trimesh
        >>> path = Path(tempfile.mkdtemp()) / "ball.ply"
        >>> _ = trimesh.creation.icosphere(subdivisions=1).export(path)
        >>> check_mesh_size(path)  # 42 vertices + 80 faces
        122
    """
    count, how = declared_elements(path)
    check_shape((max(count, 1),), f"{path}: the mesh ({how})", SignalError)
    return count


def declared_elements(path: Path) -> tuple[int, str]:
    """(vertices + faces, how that number was learnt) without parsing the geometry."""
    suffix = path.suffix.lower()
    with open(path, "rb") as f:
        head = f.read(4096)
    if suffix == ".ply" and head.startswith(b"ply"):
        return _ply(head), "vertices + faces its header declares"
    if suffix == ".off" and head.lstrip().startswith(b"OFF"):
        return _off(head), "vertices + faces its header declares"
    if suffix == ".stl" and len(head) >= 84:
        (triangles,) = struct.unpack("<I", head[80:84])
        if 84 + 50 * triangles == path.stat().st_size:  # binary STL: the size matches its count exactly
            return 4 * triangles, "faces and their corners its header declares"
    if suffix == ".obj":
        return _obj(path), "vertex and face lines"
    size = path.stat().st_size
    return size // _MIN_BYTES.get(suffix, 12), f"up to one vertex or face per {_MIN_BYTES.get(suffix, 12)} bytes"


def _ply(head: bytes) -> int:
    header = head.split(b"end_header")[0].decode("ascii", errors="replace")
    counts = re.findall(r"^element\s+(\w+)\s+(\d+)", header, flags=re.MULTILINE)
    return sum(int(n) for name, n in counts if name in ("vertex", "face"))


def _off(head: bytes) -> int:
    lines = [ln.split(b"#")[0].strip() for ln in head.splitlines()]
    words = b" ".join(ln for ln in lines if ln)[3:].split()  # "OFF nv nf ne" across one or two lines
    try:
        return int(words[0]) + int(words[1])
    except (IndexError, ValueError):
        raise SignalError("OFF header does not give vertex and face counts") from None


def _obj(path: Path) -> int:
    count, tail = 0, b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            text = tail + chunk
            count += text.count(b"\nv ") + text.count(b"\nf ")
            tail = text[-2:]  # a "\nv " cut between two reads is counted once, in the next one
    return count


def volume_shape(path: Path) -> tuple[int, ...]:
    """The shape a `.npy` (or the first array of a `.npz`) declares in its header, read without its data."""
    import zipfile

    from numpy.lib import format as npy

    def header(f: object) -> tuple[int, ...]:
        version = npy.read_magic(f)
        read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        return tuple(int(n) for n in read(f)[0])

    expect_format(path, {"NumPy", "ZIP"}, "a NumPy volume")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive, archive.open(archive.namelist()[0]) as f:
                return header(f)
        with open(path, "rb") as f:
            return header(f)
    except Exception as exc:  # not NumPy at all, a broken header, an empty archive
        raise SignalError(f"{path}: cannot read as a NumPy volume ({type(exc).__name__})") from exc
