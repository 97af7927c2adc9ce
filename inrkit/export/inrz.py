"""The .inrz file: one self-describing compressed model.

Layout (little-endian):
    b"INRZ" | u8 format version | u32 header bytes | u32 payload bytes | u32 CRC32(header + payload)
    header: deflated JSON (model name + constructor arguments, signal layout, quantisation, and per
            state-dict tensor [mode, coder, bits, per_channel, block bytes]; optionally the origin)
    payload: one block per state-dict tensor, in the order of the tensor table

A quantised tensor's block is its scales | zero points (one each per row) | coded integers: in format 2,
bfloat16 scales and zero points of one byte (two above 8 bits), one row per output channel of a
per-channel tensor (a complex vector is one row); format 1 (still read) stored float32 scales and
uint16 zero points, and gave a complex vector one row per (real, imaginary) pair: on WIRE's 256²
Kodak fit that side information was 5 kB of a 103 kB file. A float16 or raw tensor's block is its
bytes, coded. Mode "qu" codes the integers as their change from
those of the seeded initialisation on the same grid; the header's "origin" then names the seed and a
CRC of that initialisation (`origin`). The file's CRC and the lengths make corrupt, truncated and
foreign files fail with an ExportError before anything is decoded.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._version import __version__
from ..errors import ExportError
from ..limits import max_params
from . import schema
from .entropy import decode_bytes, decode_symbols, encode_bytes, encode_symbols
from .inrz_header import Entry, check_origin, check_quant, check_table
from .origin import change, init_crc, seeded, seeded_init, start_of
from .quantize import QuantSpec, affine_params, channel_rows, dequantize, prune_mask, quantize, real_view

MAGIC = b"INRZ"
LATENT_MAGIC = b"INRL"  # the latent-grid image codec's files (export/latent.py) share the .inrz suffix
VERSION = 2
READS = (1, 2)  # format versions this inrkit decodes
PREFIX = struct.Struct("<4sBIII")
MAX_HEADER = 1 << 20  # inflated header text; real headers are a few kB even for deep models
# A preset deflate dictionary of typical header text: headers are a large share of small files (0.3 bpp
# of a 128x128 image is 600 bytes). Fixed since format version 1: changing it breaks old files.
ZDICT = (b'"source":"","bit_depth":8,"signal":{"kind":"image","shape":[,"channels":3,"data_range":[0.0,1.0],'
         b'"meta":{"name":"","in_features":2}},"model":{"name":"siren","kind":"image","kwargs":{"hidden_features":'
         b',"hidden_layers":3,"in_features":2,"out_features":3,"first_omega_0":30.0,"hidden_omega_0":30.0,'
         b'"sigma":"loss":null},"quant":{"bits":8,"per_channel":false,"prune":0.0,"buffer_bits":16},'
         b'"tensors":[["raw","lzma",["f16","zlib",16,0,["q","ans",["q","gauss",8,0,["q","pack",8,0,'
         b'{"format":"inrkit.inrz/1","inrkit":"0.1.0",')


def _deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zdict=ZDICT)
    return packer.compress(data) + packer.flush()


def _inflate(data: bytes) -> bytes:
    """The header text; a header that inflates past MAX_HEADER bytes (a deflate bomb) is refused."""
    unpacker = zlib.decompressobj(-15, zdict=ZDICT)
    text = unpacker.decompress(data, MAX_HEADER + 1)
    if len(text) > MAX_HEADER:
        raise ValueError(f"header inflates past {MAX_HEADER:,} bytes")
    if not unpacker.eof or unpacker.unused_data:
        raise ValueError("header stream does not end where its length says")
    return text



def tensor_roles(model: nn.Module) -> dict[str, str]:
    """'weight' (trained parameter), 'buffer' (a float that is not trained) or 'raw' per state-dict entry."""
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    roles = {}
    for name, t in model.state_dict().items():
        if not (t.is_floating_point() or t.is_complex()):
            roles[name] = "raw"
        else:
            roles[name] = "weight" if name in trained else "buffer"
    return roles


def encode_float(real: torch.Tensor, bits: int | None, per_channel: bool,
                 origin: torch.Tensor | None = None) -> tuple[list, bytes, torch.Tensor]:
    """Quantise and code one real float tensor; returns its table entry, block and the decoded values.

    `per_channel`: one scale per row of `real` (`channel_rows` says whether a tensor's real view has rows).

    `origin`: the tensor's seeded initial value (real view); its integers on the same grid are
    subtracted ("qu" mode, `origin.change`) when that codes smaller. The decoded values do not change.
    """
    codings, values = _float_codings(real, bits, per_channel, origin)
    entry, block = min(codings, key=lambda coding: len(coding[1]))  # the plain coding on a tie
    return entry, block, values


def _float_codings(real: torch.Tensor, bits: int | None, per_channel: bool,
                   origin: torch.Tensor | None) -> tuple[list[tuple[list, bytes]], torch.Tensor]:
    """[(table entry, block)] of one real float tensor, the plain coding first and then, with `origin`,
    the change from it; and the decoded values (the same for both)."""
    if bits is None:
        coder, block = encode_bytes(real.half().numpy().tobytes())
        return [(["f16", coder, 16, 0], block)], real.half().float()
    scale, zero = affine_params(real, bits, per_channel)
    q = quantize(real, scale, zero, bits, per_channel)
    side = _side_bytes(scale, zero, bits)
    symbols = {"q": q}
    if origin is not None:
        symbols["qu"] = change(q, quantize(origin.float(), scale, zero, bits, per_channel), bits)
    codings = []
    for mode, ints in symbols.items():
        coder, coded = encode_symbols(ints.numpy().ravel(), bits, rows=ints.shape[0] if ints.dim() > 1 else 1)
        codings.append(([mode, coder, bits, int(per_channel)], side + coded))
    return codings, dequantize(q, scale, zero, per_channel)


def _side_bytes(scale: torch.Tensor, zero: torch.Tensor, bits: int) -> bytes:
    """Format 2's scales (bfloat16: `affine_params` rounds them onto it) and zero points."""
    high = (scale.contiguous().view(torch.int32) >> 16).numpy().astype("<u2")
    return high.tobytes() + zero.numpy().astype(_zero_dtype(bits, VERSION)).tobytes()


def _zero_dtype(bits: int, version: int) -> str:
    return "<u2" if version == 1 or bits > 8 else "u1"


def _read_side(block: bytes, rows: int, bits: int, version: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(scales, zero points, bytes used) from the start of a quantised block of either format."""
    scale_bytes, zero_bytes = (4, 2) if version == 1 else (2, np.dtype(_zero_dtype(bits, version)).itemsize)
    used = (scale_bytes + zero_bytes) * rows
    if len(block) < used:
        raise ExportError(f"block of {len(block)} bytes is shorter than its {rows} scales and zero points")
    if version == 1:
        scale = np.frombuffer(block, dtype="<f4", count=rows).copy()
    else:
        scale = (np.frombuffer(block, dtype="<u2", count=rows).astype(np.uint32) << 16).view(np.float32)
    zero = np.frombuffer(block, dtype=_zero_dtype(bits, version), count=rows, offset=scale_bytes * rows)
    return torch.from_numpy(scale), torch.from_numpy(zero.astype(np.int64)), used


def check_finite(model: nn.Module) -> None:
    """Refuse a model with NaN or infinite weights: they have no quantised form (and would render black).

    Example:
        >>> from inrkit import create_model
        >>> model = create_model("siren", 2, 3, hidden_features=8)
        >>> next(model.parameters()).data[0] = float("nan")
        >>> check_finite(model)
        Traceback (most recent call last):
        ...
        inrkit.errors.ExportError: the model's tensor net.0.linear.weight holds NaN or infinite values ...
    """
    for name, t in model.state_dict().items():
        if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(real_view(t)).all()):
            raise ExportError(f"the model's tensor {name} holds NaN or infinite values (did the fit diverge?); "
                              "refit it before exporting")


def encode(model: nn.Module, spec: QuantSpec, origin_seed: int | None = None) -> tuple[bytes, dict[str, torch.Tensor]]:
    """The .inrz bytes of `model`, and the state dict the decoder will rebuild (for exact comparisons).

    The tensor table holds [mode, coder, bits, per_channel, bytes] per state-dict entry, in order;
    names and shapes come from the model the header's constructor arguments rebuild. `origin_seed`:
    the seed the model's initialisation was drawn with (`inrkit fit --seed`); weights whose change
    from it codes smaller are stored that way (`origin`), the header then records the seed.

    Example:
        >>> from inrkit import create_model
        >>> model = create_model("siren", 2, 3, hidden_features=16)
        >>> data, state = encode(model, QuantSpec(bits=8))
        >>> data[:4], state.keys() == model.state_dict().keys()
        (b'INRZ', True)
    """
    check_finite(model)
    roles = tensor_roles(model)
    init = seeded_init(model, origin_seed) if origin_seed is not None else {}
    plain, best, state = [], [], {}  # (entry, block) per tensor: plain codings, and the smallest of each
    for name, t in model.state_dict().items():
        t = t.detach().cpu()
        if roles[name] == "raw":
            coder, block = encode_bytes(t.numpy().tobytes())
            codings, decoded = [(["raw", coder, 0, 0], block)], t.clone()
        else:
            real = real_view(t)
            if roles[name] == "weight" and spec.prune > 0 and t.dim() > 1:
                real = real * prune_mask(real, spec.prune)
            bits = spec.bits_for(name) if roles[name] == "weight" else spec.buffer_bits
            origin = start_of(init, name, t) if roles[name] == "weight" else None
            per_channel = spec.per_channel and roles[name] == "weight" and channel_rows(t)
            codings, values = _float_codings(real, bits, per_channel, origin)
            if t.is_complex():
                values = torch.view_as_complex(values.contiguous())
            decoded = values.to(t.dtype)
        plain.append(codings[0])
        best.append(min(codings, key=lambda coding: len(coding[1])))
        state[name] = decoded
    data = _pack(model, spec, plain)
    if best != plain:  # the origin's header entry can cost a tiny model more than its changes save
        moved = _pack(model, spec, best, {"seed": origin_seed, "crc": init_crc(init)})
        data = moved if len(moved) < len(data) else data
    return data, state


def _pack(model: nn.Module, spec: QuantSpec, codings: list[tuple[list, bytes]], origin: dict | None = None) -> bytes:
    """The file's bytes: prefix, deflated header (with the tensor table and the origin, if any), payload."""
    info = getattr(model, "signal_info", None)
    header = {"format": f"inrkit.inrz/{VERSION}", "inrkit": __version__, "model": model.model_info.to_dict(),
              "signal": info.to_dict() if info is not None else None,
              "quant": {"bits": spec.bits, "per_channel": spec.per_channel, "prune": spec.prune,
                        "buffer_bits": spec.buffer_bits,
                        # per-tensor widths (bit allocation) so the decoder can check each entry's bits
                        **({"layer_bits": dict(spec.layer_bits)} if getattr(spec, "layer_bits", ()) else {})},
              "tensors": [[*entry, len(block)] for entry, block in codings],
              **({"origin": origin} if origin else {})}
    head = _deflate(json.dumps(header, separators=(",", ":")).encode())
    payload = b"".join(block for _, block in codings)
    crc = zlib.crc32(head + payload)
    return PREFIX.pack(MAGIC, VERSION, len(head), len(payload), crc) + head + payload


def parse(data: bytes, source: str = "<bytes>") -> tuple[dict[str, Any], bytes]:
    """Check magic, lengths and checksum; return the header and the payload."""
    if data[:4] == LATENT_MAGIC:
        raise ExportError(f"{source}: a latent-grid image, not a model; decode it with `inrkit decompress`")
    if len(data) < PREFIX.size or data[:4] != MAGIC:
        raise ExportError(f"{source}: not an .inrz file (no INRZ signature)")
    _, version, head_len, payload_len, crc = PREFIX.unpack_from(data)
    if version not in READS:
        raise ExportError(f"{source}: .inrz format version {version} is not supported (this inrkit reads "
                          f"{', '.join(map(str, READS))})")
    expected = PREFIX.size + head_len + payload_len
    if len(data) != expected:
        raise ExportError(f"{source}: truncated or padded .inrz file ({len(data)} bytes, header says {expected})")
    body = data[PREFIX.size:]
    if zlib.crc32(body) != crc:
        raise ExportError(f"{source}: corrupt .inrz file (checksum mismatch)")
    try:
        header = json.loads(_inflate(body[:head_len]))
    except (zlib.error, ValueError, RecursionError) as exc:
        raise ExportError(f"{source}: unreadable .inrz header ({str(exc)[:160]})") from exc
    header = schema.mapping(header, source, "header")
    if header.get("format") != f"inrkit.inrz/{version}":
        raise schema.fail(source, "format", f"{schema.short(header.get('format'))} is not inrkit.inrz/{version}")
    return header, body[head_len:]


def _decode_tensor(entry: Entry, block: bytes, like: torch.Tensor, version: int = VERSION) -> torch.Tensor:
    """One tensor from its block of a file of format `version`; `like` (the rebuilt model's tensor) gives
    shape and dtype.

    Every size is the model's, never the block's: a block that does not hold exactly those values fails.
    """
    if entry.mode == "raw":
        dtype = like.numpy().dtype
        data = decode_bytes(entry.coder, block, like.numel() * dtype.itemsize)
        return torch.from_numpy(np.frombuffer(data, dtype=dtype).reshape(like.shape).copy())
    real_shape = list(like.shape) + ([2] if like.is_complex() else [])
    count = math.prod(real_shape)
    if entry.mode == "f16":
        raw = decode_bytes(entry.coder, block, 2 * count)
        values = torch.from_numpy(np.frombuffer(raw, dtype="<f2").astype(np.float32).reshape(real_shape))
    else:  # "q", or "qu": integers coded as their change from `like`'s (the seeded init's) on the same grid
        rows = real_shape[0] if entry.per_channel else 1
        scale, zero, used = _read_side(block, rows, entry.bits, version)
        if not bool(torch.isfinite(scale).all() and (scale > 0).all()) or bool((zero >= 1 << entry.bits).any()):
            raise ExportError(f"scales or zero points out of range for {entry.bits} bits")
        q = torch.from_numpy(decode_symbols(entry.coder, block[used:], entry.bits, count)).reshape(real_shape)
        if entry.mode == "qu":
            q = change(q, quantize(real_view(like), scale, zero, entry.bits, entry.per_channel), entry.bits, undo=True)
        values = dequantize(q, scale, zero, entry.per_channel)
    if not bool(torch.isfinite(values).all()):
        raise ExportError("holds NaN or infinite values")
    values = torch.view_as_complex(values.contiguous()) if like.is_complex() else values
    return values.to(like.dtype)


def decode(data: bytes, source: str = "<bytes>") -> nn.Module:
    """Rebuild the model stored in .inrz bytes (on the CPU, in eval mode).

    The header is checked against the schema, then its tensor table against the model it describes
    and the payload's length, before any block is decoded; each block must then hold exactly its
    tensor's values. Any disagreement is one ExportError naming the file and the field.

    Example:
        >>> from inrkit import create_model
        >>> data, _ = encode(create_model("siren", 2, 3, hidden_features=8), QuantSpec(bits=8))
        >>> decode(data).model_info.kwargs["hidden_features"]
        8
        >>> decode(data[:-1] + b"x")
        Traceback (most recent call last):
        ...
        inrkit.errors.ExportError: <bytes>: corrupt .inrz file (checksum mismatch)
    """
    header, payload = parse(data, source)
    model_info, signal_info = schema.check_record(header, source)
    quant = check_quant(header.get("quant"), source)
    origin = check_origin(header.get("origin"), source)
    with seeded(origin["seed"] if origin else None):  # then the model starts as the init the weights moved from
        model = schema.build(model_info, signal_info, source)
    like = {name: t.detach().cpu() for name, t in model.state_dict().items()}
    if origin and init_crc(like) != origin["crc"]:
        raise ExportError(f"{source}: its weights are stored as changes from the initialisation seed "
                          f"{origin['seed']} draws, and this PyTorch ({torch.__version__}) draws other numbers for "
                          "it; decode it with the PyTorch that wrote it")
    version = int(header["format"].rsplit("/", 1)[1])  # `parse` checked it names the prefix's version
    entries = check_table(header.get("tensors"), like, tensor_roles(model), quant, len(payload), source,
                          origin=origin is not None, version=version)
    state, pos = {}, 0
    for i, (entry, name) in enumerate(zip(entries, like)):
        try:
            state[name] = _decode_tensor(entry, payload[pos:pos + entry.size], like[name], version)
        except ExportError as exc:
            raise schema.fail(source, f"tensors[{i}] ({name})", str(exc)) from exc
        pos += entry.size
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ExportError(f"{source}: .inrz tensors do not match model {model_info.name!r}: "
                          f"{str(exc).splitlines()[0]}") from exc
    return model.eval()


def read_bytes(path: str | Path) -> bytes:
    """The bytes of an .inrz file, refused unread when larger than any model under the limit could need.

    Example:
        >>> read_bytes("no-such.inrz")
        Traceback (most recent call last):
        ...
        inrkit.errors.ExportError: no-such.inrz: no such .inrz file
    """
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such .inrz file")
    largest = PREFIX.size + MAX_HEADER + 8 * max_params()  # every number stored raw as 8 bytes, plus side data
    size = path.stat().st_size
    if size > largest:
        raise ExportError(f"{path}: {size:,} bytes is larger than any .inrz of a model under the parameter "
                          f"limit ({largest:,} bytes)")
    return path.read_bytes()
