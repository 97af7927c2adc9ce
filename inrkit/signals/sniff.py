"""What a file really holds, from its first bytes, so a misnamed file fails with a message naming it.

A WAV renamed `.png` used to fail deep inside a decoder ("tuple index out of range"); a text file
named `.png` with "need at least one array to stack". Loaders call `expect_format` first: a file
whose magic bytes name another known format, or that holds plain text, is refused in one line that
says what it is ("this is a WAV file, not a PNG; rename it to .wav"). Unknown binary content falls
through to the decoder, whose own error is then the best there is.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from ..errors import SignalError

# format name -> (its phrase with an article, its usual suffix where inrkit reads it)
FORMATS = {
    "PNG": ("a PNG", ".png"), "JPEG": ("a JPEG", ".jpg"), "GIF": ("a GIF", ".gif"), "TIFF": ("a TIFF", ".tif"),
    "BMP": ("a BMP", ".bmp"), "WebP": ("a WebP", ".webp"), "EXR": ("an EXR", ".exr"),
    "WAV": ("a WAV", ".wav"), "FLAC": ("a FLAC", ".flac"), "Ogg": ("an Ogg", ".ogg"), "MP3": ("an MP3", None),
    "MP4": ("an MP4/MOV", ".mp4"), "Matroska": ("a Matroska/WebM", ".mkv"), "AVI": ("an AVI", ".avi"),
    "PLY": ("a PLY", ".ply"), "GLB": ("a GLB", ".glb"), "NumPy": ("a NumPy", ".npy"), "ZIP": ("a ZIP", None),
}
IMAGE_FORMATS = frozenset({"PNG", "JPEG", "GIF", "TIFF", "BMP", "WebP", "EXR"})
AUDIO_FORMATS = frozenset({"WAV", "FLAC", "Ogg"})
VIDEO_FORMATS = frozenset({"MP4", "Matroska", "AVI", "GIF"})
SHAPE_FORMATS = frozenset({"PLY", "GLB", "NumPy", "ZIP"})
_BY_SUFFIX = {".jpeg": "JPEG", ".tiff": "TIFF", ".oga": "Ogg", ".mov": "MP4", ".m4v": "MP4", ".webm": "Matroska",
              **{suffix: name for name, (_, suffix) in FORMATS.items() if suffix}}
_PREFIXES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"II+\x00", "TIFF"), (b"MM\x00+", "TIFF"),
    (b"v/1\x01", "EXR"), (b"fLaC", "FLAC"), (b"OggS", "Ogg"), (b"ID3", "MP3"), (b"\x1aE\xdf\xa3", "Matroska"),
    (b"ply\n", "PLY"), (b"ply\r", "PLY"), (b"glTF", "GLB"), (b"\x93NUMPY", "NumPy"), (b"PK\x03\x04", "ZIP"),
)
_RIFF = {b"WAVE": "WAV", b"WEBP": "WebP", b"AVI ": "AVI"}


def sniff(path: Path) -> str | None:
    """The format a file's first bytes name ("PNG", "WAV", ...), "text", "empty", or None when unknown.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "notes.png"
        >>> _ = path.write_text("hello")
        >>> sniff(path)
        'text'
    """
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as exc:
        raise SignalError(f"{path}: cannot open: {exc.strerror or exc}") from None
    if not head:
        return "empty"
    if head[:4] == b"RIFF" and head[8:12] in _RIFF:
        return _RIFF[head[8:12]]
    if head[4:8] == b"ftyp":
        return "MP4"
    found = next((name for prefix, name in _PREFIXES if head.startswith(prefix)), None)
    if found:
        return found
    if _is_text(head):
        return "text"
    return "BMP" if head.startswith(b"BM") else None  # two letters only: checked after text


def _is_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:
            return False
        text = head[:exc.start].decode("utf-8")  # a character cut at byte 512 is still text
    return all(c.isprintable() or c in "\r\n\t" for c in text)


def expect_format(path: Path, accepted: Collection[str], what: str, text_ok: bool = False) -> str | None:
    """Refuse a file whose content is a known format outside `accepted`, plain text, or nothing at all.

    `what` names what was wanted ("an image", "audio"). Returns the sniffed format (None when unknown).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "notes.png"
        >>> _ = path.write_text("hello")
        >>> expect_format(path, IMAGE_FORMATS, "an image")
        Traceback (most recent call last):
        ...
        inrkit.errors.SignalError: ...notes.png: cannot read as an image: the file holds text, not an image ('hello')
    """
    found = sniff(path)
    if found == "empty":
        raise SignalError(f"{path}: cannot read as {what}: the file is empty")
    if found == "text" and not text_ok:
        with open(path, "rb") as f:
            start = f.read(40).decode("utf-8", errors="replace").splitlines()[0] if path.stat().st_size else ""
        raise SignalError(f"{path}: cannot read as {what}: the file holds text, not {what} ({start!r})")
    if found in FORMATS and found not in accepted:
        phrase, suffix = FORMATS[found]
        named = _BY_SUFFIX.get(path.suffix.lower())
        if named in FORMATS and named != found:  # misnamed: the name says one format, the bytes another
            hint = f" (rename it to {suffix})" if suffix else ""
            raise SignalError(f"{path}: this is {phrase} file, not {FORMATS[named][0]}{hint}")
        raise SignalError(f"{path}: this is {phrase} file, not {what}")
    return found
