"""Weights coded as their change from the seeded initialisation the fit started from.

`inrkit fit --seed S` builds its model right after `torch.manual_seed(S)`, so the initial weights can be
drawn again from S alone. A fit moves them only part of the way (after the demo's 300 SIREN steps the
change has 0.4-0.5x the weights' spread), and rows that started uniform stay near-uniform, which no
entropy coder can shrink. On a weight's own quantisation grid, the integers q of the weight minus
the integers q0 of its initial value take about a bit less per value (WIRE's hidden layers:
`benchmarks/results/wire_bits.md`). So `inrz.encode_float` codes q - q0 where that block is smaller:
the stored weights are the same numbers either way, only the file is smaller.

The decoder draws the initialisation again under the seed and checks it against the CRC written
beside the seed: a PyTorch whose generator draws other numbers for it fails with a clear error
rather than rebuilding a wrong model.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ..models import rebuild
from .quantize import real_view


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Draw under `torch.manual_seed(seed)` (nothing changes for None), leaving the caller's generator as it was."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def seeded_init(model: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """The state dict `create_model` gives `model`'s backbone and arguments under `torch.manual_seed(seed)`.

    Example:
        >>> from inrkit import create_model
        >>> _ = torch.manual_seed(3)
        >>> model = create_model("siren", 2, 3, hidden_features=8)
        >>> all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), seeded_init(model, 3).values()))
        True
    """
    with seeded(seed):
        init = rebuild(model.model_info, getattr(model, "signal_info", None))
    return {name: t.detach() for name, t in init.state_dict().items()}


def start_of(init: dict[str, torch.Tensor], name: str, weight: torch.Tensor) -> torch.Tensor | None:
    """The real view of `weight`'s initial value in `init`, or None when `init` has no such tensor."""
    start = init.get(name)
    return real_view(start) if start is not None and start.shape == weight.shape else None


def init_crc(state: dict[str, torch.Tensor]) -> int:
    """CRC32 of the floating-point tensors' bytes, in order: the decoder's check that it drew the same init."""
    crc = 0
    for t in state.values():
        if t.is_floating_point() or t.is_complex():
            crc = zlib.crc32(real_view(t).contiguous().numpy().tobytes(), crc)
    return crc


def change(q: torch.Tensor, q0: torch.Tensor, bits: int, undo: bool = False) -> torch.Tensor:
    """Integers q - q0 + 2^(bits-1) modulo 2^bits, in [0, 2^bits) like q (`undo`: q from them and q0).

    Example:
        >>> q, q0 = torch.tensor([0, 5, 7]), torch.tensor([1, 5, 0])
        >>> change(q, q0, bits=3).tolist()
        [3, 4, 3]
        >>> change(change(q, q0, 3), q0, 3, undo=True).tolist()
        [0, 5, 7]
    """
    half, levels = 1 << (bits - 1), 1 << bits
    return torch.remainder(q + q0 - half if undo else q - q0 + half, levels)
