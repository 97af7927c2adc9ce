"""Per-tensor bit widths from measured sensitivity: spend bits where rounding hurts the signal most.

One fixed width wastes bits: in the demo's WIRE fit the first hidden layer alone loses 2.8 dB at
8 bits (one scale per channel) while the last layer loses 0.02 dB. So each weight
tensor is quantised alone at every width and the signal's MSE increase is measured, with the
tensor's real coded size (`inrz.encode_float`, as the file will code it). Errors of different
tensors add up nearly independently, so a greedy knapsack then lowers, one width at a time, the
tensor that saves the most bytes per unit of added MSE until a budget of MSE is spent (the
mixed-precision idea of HAWQ, with measured rather than Hessian-estimated sensitivities).
The budget is only a prediction: `search` measures every allocation it proposes for real.
"""

from __future__ import annotations

import torch
from torch import nn

from ..fit import probe_mse
from ..signals import Signal
from .inrz import encode_float, tensor_roles
from .origin import seeded_init, start_of
from .quantize import QuantSpec, channel_rows, real_view

WIDTHS = (4, 5, 6, 7, 8, 9, 10, 11, 12, 16)  # every width up to 12: WIRE's first hidden layer needs 8-9
CHUNK = 1 << 16  # samples per forward pass, as `evaluate`

Table = dict[str, dict[int, tuple[float, int]]]
"""tensor name -> width -> (MSE increase when only this tensor is stored at that width, coded bytes)."""


def sensitivity_table(model: nn.Module, signal: Signal, per_channel: bool, widths: tuple[int, ...] = WIDTHS,
                      origin_seed: int | None = None) -> tuple[float, Table]:
    """The float model's MSE and, per trained tensor and width, the MSE it adds and the bytes it costs
    (coded as the change from the init `origin_seed` draws where that is smaller, as `encode` does)."""
    roles = tensor_roles(model)
    init = seeded_init(model, origin_seed) if origin_seed is not None else {}
    params = dict(model.named_parameters())
    base = probe_mse(model, signal, None, CHUNK)
    table: Table = {}
    for name, p in params.items():
        if roles.get(name) != "weight":
            continue
        original = p.detach().clone()
        real = real_view(original)
        origin = start_of(init, name, original)
        table[name] = {}
        try:
            for bits in widths:
                _, block, values = encode_float(real, bits, per_channel and channel_rows(p), origin)
                with torch.no_grad():
                    p.copy_(torch.view_as_complex(values.contiguous()) if p.is_complex() else values)
                table[name][bits] = (probe_mse(model, signal, None, CHUNK) - base, len(block))
        finally:
            with torch.no_grad():
                p.copy_(original)
    return base, table


def allocate(table: Table, budget: float) -> dict[str, int]:
    """Widths per tensor with the smallest total size whose predicted MSE increase stays within `budget`.

    Greedy in the order of MSE added per byte saved, stopping at the first step that does not fit: the
    budget left over is not spent on worse trades. Spending it anyway put WIRE's first-layer bias at 12
    bits (88 bytes saved for 43 % more MSE, 56 times the rate of the first hidden layer's last step)
    and lost 1.4 dB that fine-tuning did not win back; the budgets `search` sweeps cover the points
    between.

    Example:
        >>> table = {"a": {8: (0.0, 800), 4: (1.0, 400)}, "b": {8: (0.0, 800), 4: (0.1, 400)}}
        >>> allocate(table, budget=0.5)
        {'a': 8, 'b': 4}
    """
    widths = {name: sorted(row, reverse=True) for name, row in table.items()}
    chosen = {name: ws[0] for name, ws in widths.items()}
    spent = sum(table[name][bits][0] for name, bits in chosen.items())
    while True:
        best, best_rate = None, float("inf")
        for name, bits in chosen.items():
            lower = [w for w in widths[name] if w < bits]
            if not lower:
                continue
            added = table[name][lower[0]][0] - table[name][bits][0]
            saved = table[name][bits][1] - table[name][lower[0]][1]
            if saved > 0 and added / saved < best_rate:
                best, best_rate = (name, lower[0], added), added / saved
        if best is None or spent + best[2] > budget:
            return chosen
        name, bits, added = best
        chosen[name], spent = bits, spent + added


def allocated_spec(widths: dict[str, int], per_channel: bool) -> QuantSpec:
    """A QuantSpec storing each tensor at its width: the most common width as `bits`, the rest as overrides."""
    counts: dict[int, int] = {}
    for bits in widths.values():
        counts[bits] = counts.get(bits, 0) + 1
    common = max(counts, key=lambda b: (counts[b], -b))
    overrides = tuple(sorted((name, bits) for name, bits in widths.items() if bits != common))
    return QuantSpec(common, per_channel, layer_bits=overrides)
