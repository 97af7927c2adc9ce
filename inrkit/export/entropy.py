"""Lossless coding of quantised integers: several coders are tried per tensor and the smallest kept.

Coders (each block is self-contained, so the decoder needs only the coder name and the symbol count):
- "pack": plain bit packing at the quantiser's bit width (the worst case, never beaten by much).
- "zlib", "lzma": general-purpose codecs over the symbols as uint8/uint16 bytes.
- "ans": an ANS stack coder (`constriction`) with the tensor's own categorical model; the histogram
  over the used range goes into the block as deflated varints.
- "gauss": the same coder with a quantised Gaussian model (mean and std: 8 bytes of side information),
  which wins for small tensors where a histogram would cost more than it saves.
- "scaled": for a matrix of symbols, a quantised Gaussian per symbol with its row's mean and a spread
  that is its row's scale times its column's scale (one byte each). A weight matrix's rows (output
  units) and columns (inputs) move by different amounts in training: coding the ten search files of
  `benchmarks/weights_bits.py` again with it made nine of them 0.5-3.6 % smaller.
"""

from __future__ import annotations

import lzma
import struct
import zlib

import numpy as np

from ..errors import ExportError
from ..utils import require

_LZMA = [{"id": lzma.FILTER_LZMA2, "preset": 9, "dict_size": 1 << 22}]  # small dictionary: fast on small tensors
MAX_ALPHABET = 4096  # larger used ranges are not worth a histogram
CODERS = ("pack", "zlib", "lzma", "ans", "gauss", "scaled")  # for quantised integers (append only: latent.py
# stores a coder as its index here)
BYTE_CODERS = ("raw", "zlib", "lzma")  # for raw bytes (float16, integer buffers)
_VARINT_BYTES = 10  # a 64-bit integer never needs more; a longer run is a hostile file


def varints(values: np.ndarray) -> bytes:
    """Unsigned LEB128 encoding of non-negative integers.

    A negative integer has no LEB128 form (its shifts never reach 0): it is refused, not looped on.

    Example:
        >>> varints(np.array([1, 300])).hex()
        '01ac02'
    """
    out = bytearray()
    for v in values.tolist():
        if v < 0:
            raise ValueError(f"varints encode non-negative integers, got {v}")
        while True:
            byte, v = v & 0x7F, v >> 7
            out.append(byte | (0x80 if v else 0))
            if not v:
                break
    return bytes(out)


def read_varints(data: bytes, count: int, pos: int = 0) -> tuple[list[int], int]:
    """Decode `count` LEB128 integers starting at `pos`; returns them and the position after.

    Data that ends early or a varint longer than 64 bits is an ExportError (a damaged block).
    """
    out = []
    for _ in range(count):
        value = shift = 0
        while True:
            if pos >= len(data) or shift >= 7 * _VARINT_BYTES:
                raise ExportError("a damaged integer table (varints run past the block)")
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        out.append(value)
    return out, pos


def _as_bytes(symbols: np.ndarray, bits: int) -> bytes:
    return symbols.astype(np.uint8 if bits <= 8 else "<u2").tobytes()


def _from_bytes(data: bytes, bits: int, count: int) -> np.ndarray:
    if len(data) != count * (1 if bits <= 8 else 2):
        raise ExportError(f"holds {len(data)} bytes of symbols, {count:,} {bits}-bit symbols need "
                          f"{count * (1 if bits <= 8 else 2):,}")
    return np.frombuffer(data, dtype=np.uint8 if bits <= 8 else "<u2", count=count).astype(np.int64)


def _inflate_exact(data: bytes, size: int, coder: str) -> bytes:
    """Decompress a zlib/lzma block that must hold exactly `size` bytes; never more is allocated.

    A block that is damaged, ends early, inflates past `size` or leaves bytes unread is an ExportError:
    the header's sizes and the payload must agree, or the file is refused.
    """
    unpacker = zlib.decompressobj(-15) if coder == "zlib" else lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=_LZMA)
    try:
        out = unpacker.decompress(data, size + 1)
    except (zlib.error, lzma.LZMAError) as exc:
        raise ExportError(f"a damaged {coder} block ({exc})") from exc
    leftover = getattr(unpacker, "unconsumed_tail", b"")  # zlib keeps input it did not reach here
    if len(out) != size or not unpacker.eof or unpacker.unused_data or leftover:
        raise ExportError(f"a {coder} block that does not hold the {size:,} bytes the header declares")
    return out


def _pack(symbols: np.ndarray, bits: int) -> bytes:
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)
    return np.packbits(((symbols[:, None] >> shifts) & 1).astype(np.uint8).ravel()).tobytes()


def _unpack(data: bytes, bits: int, count: int) -> np.ndarray:
    if len(data) != (count * bits + 7) // 8:
        raise ExportError(f"holds {len(data)} packed bytes, {count:,} {bits}-bit symbols need "
                          f"{(count * bits + 7) // 8:,}")
    flat = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[: count * bits].reshape(count, bits)
    return (flat.astype(np.int64) << np.arange(bits - 1, -1, -1, dtype=np.int64)).sum(axis=1)


def _ans_encode(symbols: np.ndarray, model: object, *params: np.ndarray) -> bytes:
    """ANS-code `symbols` under one `model`, or under a model family with per-symbol `params` arrays."""
    constriction = require("constriction", extra="compress", feature="compression (ANS coding)")

    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(symbols.astype(np.int32), model, *params)
    return coder.get_compressed().astype("<u4").tobytes()


def _ans_decode(data: bytes, model: object, count: int, *params: np.ndarray) -> np.ndarray:
    constriction = require("constriction", extra="compress", feature="compression (ANS coding)")

    if len(data) % 4:
        raise ExportError("an ANS block that is not whole 32-bit words")
    words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
    try:
        coder = constriction.stream.stack.AnsCoder(words)
        symbols = np.asarray(coder.decode(model, *params) if params else coder.decode(model, count), dtype=np.int64)
    except ValueError as exc:
        raise ExportError(f"a damaged ANS block ({str(exc).splitlines()[0]})") from exc
    if not coder.is_empty():  # the symbols the model declares must use up the block exactly
        raise ExportError(f"an ANS block that does not hold exactly {count:,} symbols")
    return symbols


def _categorical(counts: np.ndarray) -> object:
    constriction = require("constriction", extra="compress", feature="compression (ANS coding)")

    return constriction.stream.model.Categorical(counts.astype(np.float64), perfect=False)


def _cat_encode(symbols: np.ndarray) -> bytes | None:
    low, high = int(symbols.min()), int(symbols.max())
    if high - low + 1 > MAX_ALPHABET:
        return None
    counts = np.bincount(symbols - low, minlength=high - low + 1)
    table = zlib.compress(varints(counts), 9)
    head = varints(np.array([low, high - low + 1, len(table)]))
    if high == low:  # one symbol: the histogram says it all
        return head + table
    return head + table + _ans_encode(symbols - low, _categorical(counts))


def _cat_decode(data: bytes, bits: int, count: int) -> np.ndarray:
    (low, size, table_len), pos = read_varints(data, 3)
    if not 1 <= size <= MAX_ALPHABET or low + size > 1 << bits or pos + table_len > len(data):
        raise ExportError(f"a histogram block out of range (symbols {low}..{low + size - 1} of {bits} bits, "
                          f"table of {table_len} bytes)")
    unpacker = zlib.decompressobj()
    try:
        table = unpacker.decompress(data[pos:pos + table_len], _VARINT_BYTES * size)
    except zlib.error as exc:
        raise ExportError(f"a damaged histogram ({exc})") from exc
    counts, used = read_varints(table, size)
    if used != len(table) or not unpacker.eof or unpacker.unconsumed_tail or sum(counts) != count:
        raise ExportError(f"a histogram that does not count the {count:,} symbols the model declares")
    if size == 1:
        if pos + table_len != len(data):
            raise ExportError("a one-symbol block with trailing bytes")
        return np.full(count, low, dtype=np.int64)
    return _ans_decode(data[pos + table_len:], _categorical(np.array(counts)), count) + low


def _gauss_model(high: int, *mean_std: float) -> object:
    """A quantised Gaussian over [0, high]; without mean and std, the family that takes them per symbol."""
    constriction = require("constriction", extra="compress", feature="compression (ANS coding)")

    return constriction.stream.model.QuantizedGaussian(0, high, *mean_std)


def _gauss_encode(symbols: np.ndarray, bits: int) -> bytes:
    mean, std = np.float32(symbols.mean()), np.float32(max(float(symbols.std()), 0.5))
    return struct.pack("<ff", mean, std) + _ans_encode(symbols, _gauss_model((1 << bits) - 1, float(mean), float(std)))


def _gauss_decode(data: bytes, bits: int, count: int) -> np.ndarray:
    if len(data) < 8:
        raise ExportError("a Gaussian block without its mean and deviation")
    mean, std = struct.unpack("<ff", data[:8])
    # The encoder writes a mean inside the symbol range and a deviation of at least 0.5.
    if not (0 <= mean <= (1 << bits) - 1 and 0.5 <= std <= 1 << bits):
        raise ExportError(f"a Gaussian block with mean {mean:g}, deviation {std:g} outside {bits}-bit symbols")
    return _ans_decode(data[8:], _gauss_model((1 << bits) - 1, mean, std), count)


# "scaled": log2 of a scale in eighths, offset so that a byte spans 2^-8 .. 2^23.9; means in quarters
_SCALE_STEPS, _SCALE_ZERO, _MEAN_STEPS = 8, 64, 4
_MIN_STD = 0.2  # a row or column that never changes (an unused unit) costs ~0 bits per symbol, not 0.5
_SCALED_MIN = 1024  # fewer symbols than this: the per-row and per-column bytes cost more than they save


def _scales_from(codes: np.ndarray) -> np.ndarray:
    return 2.0 ** ((codes.astype(np.float64) - _SCALE_ZERO) / _SCALE_STEPS)


def _scaled_model(means: np.ndarray, row_codes: np.ndarray, col_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-symbol means and deviations (flattened, row-major) from the stored side information; the
    encoder and the decoder both call this, so they agree bit for bit."""
    std = np.maximum(np.outer(_scales_from(row_codes), _scales_from(col_codes)), _MIN_STD)
    return np.repeat(means.astype(np.float64) / _MEAN_STEPS, len(col_codes)), std.ravel()


def _scale_codes(scales: np.ndarray) -> np.ndarray:
    logs = np.log2(np.maximum(scales, 1e-30)) * _SCALE_STEPS + _SCALE_ZERO
    return np.clip(np.round(logs), 0, 255).astype(np.uint8)


def _scaled_encode(symbols: np.ndarray, bits: int, rows: int) -> bytes | None:
    """Row means and row x column scales fitted by alternating maximum likelihood (the Gaussian's
    scale equations), stored as bytes, then every symbol coded under its own quantised Gaussian."""
    if rows < 2 or symbols.size % rows or symbols.size // rows < 2 or symbols.size < _SCALED_MIN:
        return None
    grid = symbols.reshape(rows, -1).astype(np.float64)
    means = np.round(grid.mean(axis=1) * _MEAN_STEPS).astype(np.int64)
    dev = grid - means[:, None] / _MEAN_STEPS
    row, col = np.sqrt((dev**2).mean(axis=1)), np.ones(grid.shape[1])
    for _ in range(8):
        col = np.sqrt(((dev / np.maximum(row, 1e-12)[:, None]) ** 2).mean(axis=0))
        col /= np.exp(np.log(np.maximum(col, 1e-12)).mean())  # scales' product fixed: rows carry the magnitude
        row = np.sqrt(((dev / np.maximum(col, 1e-12)[None, :]) ** 2).mean(axis=1))
    row_codes, col_codes = _scale_codes(row), _scale_codes(col)
    side = zlib.compress(varints(means) + row_codes.tobytes() + col_codes.tobytes(), 9)
    head = varints(np.array([rows, grid.shape[1], len(side)]))
    family = _gauss_model((1 << bits) - 1)
    return head + side + _ans_encode(symbols, family, *_scaled_model(means, row_codes, col_codes))


def _scaled_decode(data: bytes, bits: int, count: int) -> np.ndarray:
    (rows, cols, side_len), pos = read_varints(data, 3)
    if rows < 2 or cols < 2 or rows * cols != count or pos + side_len > len(data):
        raise ExportError(f"a scaled block of {rows} x {cols} symbols with {side_len} bytes of scales, where the "
                          f"model declares {count:,} symbols")
    unpacker = zlib.decompressobj()
    try:
        side = unpacker.decompress(data[pos:pos + side_len], _VARINT_BYTES * rows + rows + cols + 1)
    except zlib.error as exc:
        raise ExportError(f"a damaged scaled block ({exc})") from exc
    mean_codes, used = read_varints(side, rows)
    if not unpacker.eof or unpacker.unconsumed_tail or len(side) != used + rows + cols:
        raise ExportError("a scaled block whose scales do not match its rows and columns")
    means = np.array(mean_codes, dtype=np.int64)
    if means.max() > ((1 << bits) - 1) * _MEAN_STEPS:
        raise ExportError(f"a scaled block with row means outside {bits}-bit symbols")
    row_codes = np.frombuffer(side, dtype=np.uint8, count=rows, offset=used)
    col_codes = np.frombuffer(side, dtype=np.uint8, count=cols, offset=used + rows)
    return _ans_decode(data[pos + side_len:], _gauss_model((1 << bits) - 1), count,
                       *_scaled_model(means, row_codes, col_codes))


def encode_symbols(symbols: np.ndarray, bits: int, rows: int = 1) -> tuple[str, bytes]:
    """The smallest coding of integers in [0, 2^bits) among all coders; returns (coder name, block).

    `rows`: the symbols are a matrix of this many rows (a weight tensor's output units), which the
    "scaled" coder models row by row and column by column.

    Example:
        >>> name, block = encode_symbols(np.array([3, 3, 3, 2, 3, 3]), bits=8)
        >>> decode_symbols(name, block, bits=8, count=6).tolist()
        [3, 3, 3, 2, 3, 3]
    """
    symbols = np.asarray(symbols, dtype=np.int64).ravel()
    if symbols.size == 0:
        return "pack", b""
    if symbols.min() < 0 or symbols.max() >= 1 << bits:  # e.g. NaN weights quantise to -2^63
        raise ValueError(f"symbols must lie in [0, 2^{bits}), got {symbols.min()}..{symbols.max()}")
    raw = _as_bytes(symbols, bits)
    candidates = {"pack": _pack(symbols, bits), "zlib": zlib.compress(raw, 9)[2:-4],
                  "lzma": lzma.compress(raw, format=lzma.FORMAT_RAW, filters=_LZMA),
                  "gauss": _gauss_encode(symbols, bits)}
    for name, block in (("ans", _cat_encode(symbols)), ("scaled", _scaled_encode(symbols, bits, rows))):
        if block is not None:
            candidates[name] = block
    name = min(candidates, key=lambda k: len(candidates[k]))
    return name, candidates[name]


def decode_symbols(coder: str, data: bytes, bits: int, count: int) -> np.ndarray:
    """Inverse of `encode_symbols`: `count` integers (int64) from a block written by `coder`.

    The block must hold exactly `count` symbols below 2^bits, else ExportError (never a different
    number of values, never an allocation larger than the symbols themselves).

    Example:
        >>> decode_symbols("pack", b"\\xff", bits=4, count=3)
        Traceback (most recent call last):
        ...
        inrkit.errors.ExportError: holds 1 packed bytes, 3 4-bit symbols need 2
    """
    if coder not in CODERS or not (isinstance(bits, int) and 1 <= bits <= 16):
        raise ExportError(f"unknown coder {coder!r} or bit width {bits!r}")
    if count == 0:
        if data:
            raise ExportError("a block with bytes for a tensor without values")
        return np.zeros(0, dtype=np.int64)
    if coder == "pack":
        symbols = _unpack(data, bits, count)
    elif coder in ("zlib", "lzma"):
        symbols = _from_bytes(_inflate_exact(data, count * (1 if bits <= 8 else 2), coder), bits, count)
    elif coder == "ans":
        symbols = _cat_decode(data, bits, count)
    elif coder == "scaled":
        symbols = _scaled_decode(data, bits, count)
    else:
        symbols = _gauss_decode(data, bits, count)
    if symbols.size != count or (count and (symbols.min() < 0 or symbols.max() >= 1 << bits)):
        raise ExportError(f"symbols outside {bits} bits (the header's bit width disagrees with the block)")
    return symbols


def encode_bytes(data: bytes) -> tuple[str, bytes]:
    """Raw bytes (fp16 weights, integer buffers): the smaller of stored, zlib and lzma."""
    candidates = {"raw": data, "zlib": zlib.compress(data, 9)[2:-4],
                  "lzma": lzma.compress(data, format=lzma.FORMAT_RAW, filters=_LZMA)}
    name = min(candidates, key=lambda k: len(candidates[k]))
    return name, candidates[name]


def decode_bytes(coder: str, data: bytes, size: int) -> bytes:
    """Inverse of `encode_bytes`: exactly `size` bytes, else ExportError.

    Example:
        >>> decode_bytes(*encode_bytes(bytes(100)), size=100) == bytes(100)
        True
    """
    if coder == "raw":
        if len(data) != size:
            raise ExportError(f"holds {len(data):,} bytes, the tensor needs {size:,}")
        return data
    if coder in ("zlib", "lzma"):
        return _inflate_exact(data, size, coder)
    raise ExportError(f"unknown byte coder {coder!r}")
