"""Why WIRE needs about 8 bits per parameter where SIREN needs 3-4: measurements on the fits of
`weights_bits.py` (the demo and the 256² Kodak crop, 300 steps, seed 0; cached under runs/weights_bits/).

For each fit:
- the PSNR each weight tensor loses when it alone is stored at 6, 7, 8 and 10 bits per channel
  (`allocate.sensitivity_table`, the table the search allocates bits from);
- the first layer's faint units: Gabor outputs at most 1e-4 of the strongest unit's mean energy
  (some exactly 0 at every pixel), whose weights in the next layer barely matter;
- how much one step size per input column could save over one per row among the other units: half
  the log2 of the arithmetic over the geometric mean of their mean energies;
- the bits per value of the hidden layers' per-channel integers at the same step sizes, for the
  weights and for their change from the seeded initialisation (the entropy `origin` coding can reach).

    .venv/bin/python benchmarks/wire_bits.py        # ~1 min with cached fits; writes results/wire_bits.md
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from weights_bits import SIGNALS, fitted

from inrkit import create_model
from inrkit.export.allocate import sensitivity_table
from inrkit.export.quantize import affine_params, quantize, real_view
from inrkit.models.wire import gabor

OUT = Path(__file__).resolve().parent / "results" / "wire_bits.md"
WIDTHS = (6, 7, 8, 10)


def entropy(symbols: torch.Tensor) -> float:
    """Empirical entropy in bits per symbol."""
    _, counts = np.unique(symbols.numpy(), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def sensitivity_rows(model, signal) -> list[str]:
    base, table = sensitivity_table(model, signal, per_channel=True, widths=WIDTHS)
    rows = []
    for name, by_width in table.items():
        losses = [10 * math.log10((base + by_width[b][0]) / base) for b in WIDTHS]
        rows.append(f"| {name} | {real_view(model.state_dict()[name]).numel():,} | "
                    + " | ".join(f"{v:.2f}" for v in losses) + " |")
    return rows


def unit_energies(model, signal) -> list[torch.Tensor]:
    """Mean |z|² of each input unit of hidden.0 and hidden.1 over the signal's grid."""
    with torch.no_grad():
        z = gabor(model.first(signal.coords()), None, model.first_omega_0, model.sigma)
        out = []
        for layer in model.hidden:
            re, im = z.chunk(2, dim=-1)
            out.append((re.square() + im.square()).mean(0).double())
            a, b = layer(z).chunk(2, dim=-1)
            z = gabor(a, b, model.hidden_omega_0, model.sigma)
    return out


def column_gain(energy: torch.Tensor) -> tuple[int, int, float]:
    """(dead units, units under 1e-4 of the largest energy, bits per value one step per input column
    could save among the others: half the log2 of their energies' arithmetic over geometric mean)."""
    faint = energy < 1e-4 * energy.max()
    live = energy[~faint]
    return int((energy == 0).sum()), int(faint.sum()), 0.5 * math.log2(float(live.mean() / live.log().mean().exp()))


def update_bits(model, init, name: str, bits: int) -> tuple[float, float]:
    """Bits per value of the weight's per-channel integers and of its update's at the weight's step sizes."""
    w, w0 = (real_view(m.state_dict()[name]).reshape(real_view(m.state_dict()[name]).shape[0], -1)
             for m in (model, init))
    scale, zero = affine_params(w, bits, per_channel=True)
    q_w = quantize(w, scale, zero, bits, per_channel=True)
    q_d = torch.round((w - w0) / scale[:, None]).long()
    rows = range(w.shape[0])
    return (float(np.mean([entropy(q_w[r]) for r in rows])), float(np.mean([entropy(q_d[r]) for r in rows])))


def main() -> None:
    torch.set_num_threads(1)
    lines = ["# WIRE at low bit widths: where the bits go", "",
             "Made by `.venv/bin/python benchmarks/wire_bits.py` on the fits of `weights_bits.py` (300 steps, "
             "seed 0).", ""]
    for signal_name in SIGNALS:
        signal, model, _ = fitted(signal_name, "wire")
        torch.manual_seed(0)  # the initialisation `weights_bits.fitted` started from
        init = create_model("wire", signal=signal, recipe=SIGNALS[signal_name][2])
        lines += [f"## {signal_name}", "", "PSNR lost (dB) when one tensor alone is stored per channel at:", "",
                  "| tensor | values | " + " | ".join(f"{b} bits" for b in WIDTHS) + " |",
                  "|---|---:|" + "---:|" * len(WIDTHS)] + sensitivity_rows(model, signal) + [""]
        for layer, energy in enumerate(unit_energies(model, signal)):
            dead, faint, gain = column_gain(energy)
            lines.append(f"- inputs of hidden.{layer}: {faint} of {energy.numel()} units below 1e-4 of the largest "
                         f"mean energy ({dead} exactly 0 at every pixel); among the others one step per input "
                         f"column would save {gain:.2f} bits per value over one per row")
        lines += ["", "| tensor | bits | weight: bits/value | update from init: bits/value |", "|---|---:|---:|---:|"]
        for name in ("hidden.0.weight", "hidden.1.weight"):
            for bits in (6, 7, 8):
                weight, update = update_bits(model, init, name, bits)
                lines.append(f"| {name} | {bits} | {weight:.2f} | {update:.2f} |")
        lines.append("")
        print("\n".join(lines[-12:]), flush=True)
    OUT.write_text("\n".join(lines))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
