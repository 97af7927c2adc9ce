"""Hostile weights files and .inrz headers: one ExportError naming the file and the field, never a foreign exception.

The fuzzer (benchmarks/fuzz_files.py) mutates valid files with the checksum recomputed; the cases
below pin the ones issue 16 reported (metadata not JSON, a list, missing `model`, negative or huge
widths; headers whose bits or shape disagree with the payload; shapes [0, 16] and 16000²; NaN weights).
"""

from __future__ import annotations

import importlib
import json
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from inrkit import create_model
from inrkit.errors import ExportError
from inrkit.export import compress, load, save
from inrkit.export.entropy import decode_bytes, decode_symbols, encode_symbols, read_varints, varints
from inrkit.export.inrz import PREFIX, _deflate, _inflate, decode, encode
from inrkit.export.quantize import QuantSpec
from inrkit.signals import SignalInfo

INFO = SignalInfo("image", (16, 16), 3, (0.0, 1.0), {"name": "t"})
FUZZ = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz_files.py"


def test_mutated_files_load_or_fail_in_one_inrkit_line(monkeypatch):
    monkeypatch.syspath_prepend(str(FUZZ.parent))  # the fuzzer and its mutations live in benchmarks/
    run_file_fuzz = importlib.import_module("fuzz_files").run_file_fuzz
    result = run_file_fuzz(300, seed=0, timeout=20.0)
    assert result["other"] == 0, result["samples"].get("other")
    assert result["silent"] == 0, result["samples"].get("silent")
    assert result["hangs"] == 0, result["samples"].get("hang")
    assert result["rejected"] > 100 and result["ok"] > 10  # both paths exercised


# ---- .inrz headers that disagree with their payload ------------------------------------------------------------


def _inrz(bits: int | None = 8, width: int = 8) -> tuple[bytes, dict]:
    data, _ = encode(create_model("siren", signal=INFO, hidden_features=width, hidden_layers=1), QuantSpec(bits))
    _, _, head_len, _, _ = PREFIX.unpack_from(data)
    return data, json.loads(_inflate(data[PREFIX.size:PREFIX.size + head_len]))


def _with_header(data: bytes, header: dict) -> bytes:
    """The same payload under a new header, lengths and checksum recomputed (so only inrkit's checks remain)."""
    _, version, head_len, payload_len, _ = PREFIX.unpack_from(data)
    payload = data[PREFIX.size + head_len:]
    head = _deflate(json.dumps(header).encode())
    return PREFIX.pack(b"INRZ", version, len(head), len(payload), zlib.crc32(head + payload)) + head + payload


def test_a_tensor_coded_as_a_change_from_an_init_the_header_does_not_name_is_refused():
    torch.manual_seed(7)
    model = create_model("siren", signal=INFO, hidden_features=8, hidden_layers=1)
    data, _ = encode(model, QuantSpec(8), origin_seed=7)
    _, _, head_len, _, _ = PREFIX.unpack_from(data)
    header = json.loads(_inflate(data[PREFIX.size:PREFIX.size + head_len]))
    assert header["origin"]["seed"] == 7 and header["tensors"][0][0] == "qu"
    del header["origin"]
    with pytest.raises(ExportError, match=r"x\.inrz: tensors\[0\] .*does not name \(no origin\)"):
        decode(_with_header(data, header), "x.inrz")


@pytest.mark.parametrize("bits", [1, 7, 9, 16])
def test_a_tensor_bit_width_that_disagrees_with_the_payload_is_refused(bits):
    data, header = _inrz(8)
    header["tensors"][0][2] = bits
    with pytest.raises(ExportError, match=r"x\.inrz: tensors\[0\]"):
        decode(_with_header(data, header), "x.inrz")


def test_every_coder_refuses_a_bit_width_the_quant_record_also_claims():
    """Header and quant both say 7 bits for an 8-bit payload: the symbols or lengths give it away."""
    data, header = _inrz(8)
    header["quant"]["bits"] = 7
    for entry in header["tensors"]:
        entry[2] = 7
    with pytest.raises(ExportError, match=r"x\.inrz: tensors\[\d+\]"):
        decode(_with_header(data, header), "x.inrz")


@pytest.mark.parametrize("edit, field", [
    (lambda h: h["signal"].update(shape=[16]), "signal"),
    (lambda h: h["signal"].update(shape=[0, 16]), "signal.shape"),
    (lambda h: h["signal"].update(shape=[16000, 16000]), "signal.shape"),
    (lambda h: h["signal"].update(channels=1), "signal"),
    (lambda h: h["model"]["kwargs"].update(hidden_features=16), "tensors"),
    (lambda h: h["model"]["kwargs"].update(hidden_features=-3), "model.kwargs.hidden_features"),
    (lambda h: h["model"]["kwargs"].update(hidden_features=10**6), "model.kwargs"),
    (lambda h: h["model"].update(name="nosuchnet"), "model.name"),
    (lambda h: h.pop("model"), "model"),
    (lambda h: h["tensors"][0].__setitem__(4, h["tensors"][0][4] + 1), "tensors"),
    (lambda h: h["tensors"].pop(), "tensors"),
    (lambda h: h["quant"].update(per_channel=True), r"tensors\[0\]"),
    (lambda h: h["tensors"][0].__setitem__(1, "lzma"), r"tensors\[0\]"),
])
def test_a_foreign_header_behind_a_valid_checksum_is_one_line(edit, field):
    data, header = _inrz(8)
    edit(header)
    start = time.perf_counter()
    with pytest.raises(ExportError, match=rf"^x\.inrz: {field}") as info:
        decode(_with_header(data, header), "x.inrz")
    assert "\n" not in str(info.value) and time.perf_counter() - start < 5  # no 16000² allocation


def test_a_header_that_is_a_list_or_a_deflate_bomb_is_refused():
    data, header = _inrz(8)
    with pytest.raises(ExportError, match="x.inrz: header: must be an object"):
        decode(_with_header(data, []), "x.inrz")
    bomb = _deflate(b" " * (3 << 20))  # 3 MB of spaces deflate to a few kB
    payload = data[-10:]
    crafted = PREFIX.pack(b"INRZ", 1, len(bomb), len(payload), zlib.crc32(bomb + payload)) + bomb + payload
    with pytest.raises(ExportError, match="unreadable .inrz header"):
        decode(crafted, "x.inrz")


# ---- weights files ---------------------------------------------------------------------------------------------


def _with_metadata(path: Path, text: str) -> Path:
    """Rewrite a safetensors file's inrkit metadata string, keeping its tensors."""
    data = path.read_bytes()
    (n,) = struct.unpack_from("<Q", data)
    table = json.loads(data[8:8 + n])
    table["__metadata__"]["inrkit"] = text
    head = json.dumps(table).encode()
    head += b" " * (-len(head) % 8)
    path.write_bytes(struct.pack("<Q", len(head)) + head + data[8 + n:])
    return path


def _meta_of(model_path: Path) -> dict:
    data = model_path.read_bytes()
    (n,) = struct.unpack_from("<Q", data)
    return json.loads(json.loads(data[8:8 + n])["__metadata__"]["inrkit"])


@pytest.mark.parametrize("edit, field", [
    (lambda m: "not json {", "metadata: not JSON"),
    (lambda m: [1, 2], "metadata: must be an object"),
    (lambda m: {k: v for k, v in m.items() if k != "model"}, "model: must be an object"),
    (lambda m: {**m, "signal": {k: v for k, v in m["signal"].items() if k != "shape"}}, "signal.shape"),
    (lambda m: {**m, "model": {**m["model"], "kwargs": {**m["model"]["kwargs"], "hidden_features": -1}}},
     "model.kwargs.hidden_features"),
    (lambda m: {**m, "model": {**m["model"], "kwargs": {**m["model"]["kwargs"], "hidden_features": 200_000}}},
     "model.kwargs: siren with these arguments asks for"),
    (lambda m: {**m, "model": {**m["model"], "kwargs": {**m["model"]["kwargs"], "hidden_features": 9}}},
     "tensor"),
    (lambda m: {**m, "signal": {**m["signal"], "shape": [0, 16]}}, "signal.shape"),
    (lambda m: {**m, "signal": {**m["signal"], "shape": [16000, 16000]}}, "signal.shape"),
    (lambda m: {**m, "complex": ["net.0.linear.weight"]}, "complex"),
])
def test_bad_weights_metadata_is_one_line_naming_the_field(tmp_path, edit, field):
    path = save(create_model("siren", signal=INFO, hidden_features=8, hidden_layers=1), tmp_path / "w.safetensors")
    new = edit(_meta_of(path))
    _with_metadata(path, new if isinstance(new, str) else json.dumps(new))
    with pytest.raises(ExportError, match=rf"^{path}: {field}") as info:
        load(path)
    assert "\n" not in str(info.value)


def test_a_valid_weights_file_still_round_trips(tmp_path):
    model = create_model("wire", signal=INFO, hidden_features=8, hidden_layers=1)
    loaded = load(save(model, tmp_path / "w.safetensors"))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    assert loaded.signal_info == INFO


# ---- non-finite weights ----------------------------------------------------------------------------------------


def test_export_refuses_nan_weights_in_one_line_instead_of_looping(tmp_path):
    model = create_model("siren", signal=INFO, hidden_features=8, hidden_layers=1)
    next(model.parameters()).data[0, 0] = float("nan")
    start = time.perf_counter()
    with pytest.raises(ExportError, match="holds NaN or infinite values"):
        compress(model, tmp_path / "m.inrz")
    assert time.perf_counter() - start < 5 and not (tmp_path / "m.inrz").exists()
    with pytest.raises(ExportError, match="holds NaN or infinite values"):
        load(save(model, tmp_path / "nan.safetensors"))


def test_varints_refuse_negative_integers():
    with pytest.raises(ValueError, match="non-negative"):
        varints(np.array([3, -1]))


def test_decoders_never_inflate_past_what_the_model_declares():
    bomb = zlib.compress(bytes(50 << 20), 9)[2:-4]  # 50 MB of zeros in ~50 kB
    with pytest.raises(ExportError, match="does not hold the 10 bytes"):
        decode_bytes("zlib", bomb, size=10)
    with pytest.raises(ExportError, match="out of range"):  # a histogram of 2^20 symbols for 8-bit values
        decode_symbols("ans", varints(np.array([0, 1 << 20, 0])), bits=8, count=4)
    with pytest.raises(ExportError, match="varints run past"):
        decode_symbols("ans", b"\xff" * 20, bits=8, count=4)


def test_a_scaled_block_that_disagrees_with_its_shape_or_is_cut_short_is_refused():
    rng = np.random.default_rng(0)
    symbols = np.clip(100 + rng.normal(size=(32, 64)) * rng.uniform(1, 20, (32, 1)), 0, 255).astype(np.int64).ravel()
    name, block = encode_symbols(symbols, 8, rows=32)
    assert name == "scaled"
    with pytest.raises(ExportError, match="32 x 64 symbols"):
        decode_symbols(name, block, bits=8, count=symbols.size + 64)
    with pytest.raises(ExportError, match="ANS block"):
        decode_symbols(name, block[:-5], bits=8, count=symbols.size)
    (rows, cols, side_len), pos = read_varints(block, 3)
    with pytest.raises(ExportError, match="scales do not match|damaged scaled"):
        decode_symbols(name, varints(np.array([rows, cols, side_len - 1])) + block[pos:pos + side_len - 1]
                       + block[pos + side_len:], bits=8, count=symbols.size)
    with pytest.raises(ExportError, match="row means outside"):  # means of 8-bit symbols past 255
        side = zlib.compress(varints(np.full(rows, 4 * 300)) + bytes(rows + cols), 9)
        decode_symbols(name, varints(np.array([rows, cols, len(side)])) + side + block[pos + side_len:],
                       bits=8, count=symbols.size)
