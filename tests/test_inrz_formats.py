"""Files of an earlier .inrz format still decode, to the same numbers."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from inrkit.export.inrz import VERSION, decode, encode, parse
from inrkit.export.quantize import QuantSpec

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("name", ["wire-pc6-origin", "siren-8bit"])
def test_a_format_1_file_decodes_to_the_numbers_it_held(name: str) -> None:
    # written by the format-1 encoder (commit 2e6f8b7): float32 scales, uint16 zero points, and a scale
    # per (real, imaginary) pair of WIRE's complex biases; the WIRE file codes changes from a seeded init
    data = (FIXTURES / f"{name}.v1.inrz").read_bytes()
    assert parse(data)[0]["format"] == "inrkit.inrz/1" and VERSION == 2
    want = load_file(FIXTURES / f"{name}.v1.decoded.safetensors")
    got = decode(data).state_dict()
    assert got.keys() == want.keys()
    for key, value in got.items():
        assert torch.equal(torch.view_as_real(value) if value.is_complex() else value, want[key]), key


def test_format_2_stores_the_side_information_of_a_per_channel_wire_model_in_fewer_bytes() -> None:
    data = (FIXTURES / "wire-pc6-origin.v1.inrz").read_bytes()
    header = parse(data)[0]
    spec = QuantSpec(6, True, layer_bits=tuple(header["quant"]["layer_bits"].items()))
    again, _ = encode(decode(data), spec, header["origin"]["seed"])
    # bfloat16 scales and byte zero points; a complex bias is one row, not one per (real, imaginary) pair
    v1_rows, v2_rows = parse(data)[0]["tensors"], parse(again)[0]["tensors"]
    assert [row[3] for row in v2_rows if row[3]] and sum(r[3] for r in v2_rows) < sum(r[3] for r in v1_rows)
    assert len(again) < len(data) - 100
