"""Lossless coding of quantised integers: several coders are tried per tensor and the smallest kept.

Coders (each block is self-contained, so the decoder needs only the coder name and the symbol count):
- "pack": plain bit packing at the quantiser's bit width (the worst case, never beaten by much).
- "zlib", "lzma": general-purpose codecs over the symbols as uint8/uint16 bytes.
- "ans": an ANS stack coder (`constriction`) with the tensor's own categorical model; the histogram
  over the used range goes into the block as deflated varints.
- "gauss": the same coder with a quantised Gaussian model (mean and std: 8 bytes of side information),
  which wins for small tensors where a histogram would cost more than it saves.
"""

from __future__ import annotations

import lzma
import struct
import zlib

import numpy as np

from ..utils import require

_LZMA = [{"id": lzma.FILTER_LZMA2, "preset": 9, "dict_size": 1 << 22}]  # small dictionary: fast on small tensors
MAX_ALPHABET = 4096  # larger used ranges are not worth a histogram


def varints(values: np.ndarray) -> bytes:
    """Unsigned LEB128 encoding of non-negative integers."""
    out = bytearray()
    for v in values.tolist():
        while True:
            byte, v = v & 0x7F, v >> 7
            out.append(byte | (0x80 if v else 0))
            if not v:
                break
    return bytes(out)


def read_varints(data: bytes, count: int, pos: int = 0) -> tuple[list[int], int]:
    """Decode `count` LEB128 integers starting at `pos`; returns them and the position after."""
    out = []
    for _ in range(count):
        value = shift = 0
        while True:
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
    return np.frombuffer(data, dtype=np.uint8 if bits <= 8 else "<u2", count=count).astype(np.int64)


def _pack(symbols: np.ndarray, bits: int) -> bytes:
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)
    return np.packbits(((symbols[:, None] >> shifts) & 1).astype(np.uint8).ravel()).tobytes()


def _unpack(data: bytes, bits: int, count: int) -> np.ndarray:
    flat = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[: count * bits].reshape(count, bits)
    return (flat.astype(np.int64) << np.arange(bits - 1, -1, -1, dtype=np.int64)).sum(axis=1)


def _ans_encode(symbols: np.ndarray, model: object) -> bytes:
    constriction = require("constriction", extra="compress", feature="compression (ANS coding)")

    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(symbols.astype(np.int32), model)
    return coder.get_compressed().astype("<u4").tobytes()


def _ans_decode(data: bytes, model: object, count: int) -> np.ndarray:
    constriction = require("constriction", extra="compress", feature="compression (ANS coding)")

    words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
    coder = constriction.stream.stack.AnsCoder(words)
    return np.asarray(coder.decode(model, count), dtype=np.int64)


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


def _cat_decode(data: bytes, count: int) -> np.ndarray:
    (low, size, table_len), pos = read_varints(data, 3)
    counts, _ = read_varints(zlib.decompress(data[pos:pos + table_len]), size)
    if size == 1:
        return np.full(count, low, dtype=np.int64)
    return _ans_decode(data[pos + table_len:], _categorical(np.array(counts)), count) + low


def _gauss_model(high: int, mean: float, std: float) -> object:
    constriction = require("constriction", extra="compress", feature="compression (ANS coding)")

    return constriction.stream.model.QuantizedGaussian(0, high, mean, std)


def _gauss_encode(symbols: np.ndarray, bits: int) -> bytes:
    mean, std = np.float32(symbols.mean()), np.float32(max(float(symbols.std()), 0.5))
    return struct.pack("<ff", mean, std) + _ans_encode(symbols, _gauss_model((1 << bits) - 1, float(mean), float(std)))


def _gauss_decode(data: bytes, bits: int, count: int) -> np.ndarray:
    mean, std = struct.unpack("<ff", data[:8])
    return _ans_decode(data[8:], _gauss_model((1 << bits) - 1, mean, std), count)


def encode_symbols(symbols: np.ndarray, bits: int) -> tuple[str, bytes]:
    """The smallest coding of integers in [0, 2^bits) among all coders; returns (coder name, block).

    Example:
        >>> name, block = encode_symbols(np.array([3, 3, 3, 2, 3, 3]), bits=8)
        >>> decode_symbols(name, block, bits=8, count=6).tolist()
        [3, 3, 3, 2, 3, 3]
    """
    symbols = np.asarray(symbols, dtype=np.int64).ravel()
    if symbols.size == 0:
        return "pack", b""
    raw = _as_bytes(symbols, bits)
    candidates = {"pack": _pack(symbols, bits), "zlib": zlib.compress(raw, 9)[2:-4],
                  "lzma": lzma.compress(raw, format=lzma.FORMAT_RAW, filters=_LZMA),
                  "gauss": _gauss_encode(symbols, bits)}
    cat = _cat_encode(symbols)
    if cat is not None:
        candidates["ans"] = cat
    name = min(candidates, key=lambda k: len(candidates[k]))
    return name, candidates[name]


def decode_symbols(coder: str, data: bytes, bits: int, count: int) -> np.ndarray:
    """Inverse of `encode_symbols`: `count` integers (int64) from a block written by `coder`."""
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    if coder == "pack":
        return _unpack(data, bits, count)
    if coder == "zlib":
        return _from_bytes(zlib.decompress(data, -15), bits, count)
    if coder == "lzma":
        return _from_bytes(lzma.decompress(data, format=lzma.FORMAT_RAW, filters=_LZMA), bits, count)
    if coder == "ans":
        return _cat_decode(data, count)
    if coder == "gauss":
        return _gauss_decode(data, bits, count)
    raise ValueError(f"unknown coder {coder!r}")


def encode_bytes(data: bytes) -> tuple[str, bytes]:
    """Raw bytes (fp16 weights, integer buffers): the smaller of stored, zlib and lzma."""
    candidates = {"raw": data, "zlib": zlib.compress(data, 9)[2:-4],
                  "lzma": lzma.compress(data, format=lzma.FORMAT_RAW, filters=_LZMA)}
    name = min(candidates, key=lambda k: len(candidates[k]))
    return name, candidates[name]


def decode_bytes(coder: str, data: bytes) -> bytes:
    if coder == "raw":
        return data
    if coder == "zlib":
        return zlib.decompress(data, -15)
    if coder == "lzma":
        return lzma.decompress(data, format=lzma.FORMAT_RAW, filters=_LZMA)
    raise ValueError(f"unknown coder {coder!r}")
