"""Reach a target when storing a model: the smallest file within a PSNR loss, or the best quality under a bpp.

The knobs are the weight bit width, one scale per tensor or per output channel, per-layer widths
(small tensors such as biases and the first layer are kept at 12 bits or more: they cost little and
are the most sensitive; for a loss target, also widths allocated per tensor from measured sensitivity,
`allocate`), magnitude pruning, and quantisation-aware fine-tuning (QAT) at the chosen width.
The coder of each tensor is always the smallest of those in `entropy`.

The search is cost-aware: every knob setting is first measured without fine-tuning (an encode and
one evaluation), then QAT, which costs training steps, runs only on the few settings a bisection
over file size needs. Nothing is written until the winner is known, so an unreachable target leaves
no file; it raises `ExportError` naming the nearest point that was reached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..errors import ConfigError, ExportError
from ..signals import Signal
from .compress import CompressStats, check_inrz_name, measure, resolve_signal, write_atomic
from .inrz import encode, tensor_roles
from .qat import STEPS as QAT_STEPS
from .qat import finetune_quantized
from .quantize import QuantSpec

UNIFORM_WIDTHS = (4, 5, 6, 7, 8, 10, 12, 16)  # one width for every tensor (allocate.WIDTHS: per tensor)
PRUNE = (0.0, 0.3, 0.6, 0.8, 0.9)
SMALL_TENSOR = 0.02  # tensors under this share of the parameters keep >= SMALL_BITS (see the module docstring)
# SPDER at 8 bits lost 28-32 dB from its first layer alone and 6 dB from the first hidden bias (a 64-wide
# probe on a 32² crop, issue 14): omega0 = 30 and the sqrt(|z|) damping amplify early rounding through
# every later layer; 12 bits for the small tensors costs SIREN's demo fit ~0.05 bits/param.
SMALL_BITS = 12


@dataclass
class Probe:
    """One knob setting and what it gave."""

    spec: QuantSpec
    qat: bool
    stats: CompressStats
    model: nn.Module

    @property
    def loss(self) -> float:
        return self.stats.float_metrics["psnr"] - self.stats.metrics["psnr"]

    def describe(self) -> str:
        width = f"{self.spec.bits} bit{' per channel' if self.spec.per_channel else ''}"
        extra = (f", prune {self.spec.prune:g}" if self.spec.prune else "") + (", QAT" if self.qat else "")
        bpp = f"{self.stats.bpp:.4f} bpp, " if self.stats.bpp is not None else ""
        return (f"{width}{extra}: {bpp}{self.stats.bits_per_param:.2f} bits/param, "
                f"{self.stats.metrics['psnr']:.2f} dB ({self.loss:+.2f} dB loss)")


def layer_spec(model: nn.Module, bits: int, per_channel: bool, prune: float = 0.0) -> QuantSpec:
    """`bits` for the large weight tensors; tensors under 2% of the parameters at max(bits, 12).

    Example:
        >>> from inrkit import create_model
        >>> spec = layer_spec(create_model("siren", 2, 3, hidden_features=64), bits=5, per_channel=False)
        >>> spec.bits_for("net.1.linear.weight"), spec.bits_for("net.0.linear.weight")
        (5, 12)
    """
    roles = tensor_roles(model)
    state = model.state_dict()
    total = sum(t.numel() for n, t in state.items() if roles[n] == "weight")
    small = tuple((n, max(bits, SMALL_BITS)) for n, t in state.items()
                  if roles[n] == "weight" and t.numel() < SMALL_TENSOR * total and bits < SMALL_BITS)
    return QuantSpec(bits, per_channel, prune, layer_bits=small)


def _probe(model: nn.Module, spec: QuantSpec, signal: Signal, float_metrics: dict, qat_steps: int,
           qat_lr: float | None, seed: int, origin_seed: int | None = None) -> Probe:
    stored = model
    if qat_steps > 0:
        stored = finetune_quantized(model, signal, spec, qat_steps, lr=qat_lr, seed=seed)
    data, _ = encode(stored, spec, origin_seed)
    stats = measure(stored, data, spec, signal)
    stats.float_metrics = float_metrics
    return Probe(spec, qat_steps > 0, stats, stored)


def search_compress(model: nn.Module, path: str | Path, *, max_loss: float | None = None,
                    target_bpp: float | None = None, signal: Signal | str | Path | None = None,
                    qat_steps: int = QAT_STEPS, qat_lr: float | None = None, max_qat_runs: int = 4,
                    seed: int = 0, origin_seed: int | None = None) -> CompressStats:
    """Store `model` at the smallest size within `max_loss` dB, or at the best PSNR within `target_bpp`.

    Args:
        model: a fitted model (not changed).
        path: the .inrz file, written only when the target is met.
        max_loss: largest PSNR loss against the float model, in dB (exclusive with target_bpp).
        target_bpp: largest bits per sample of the file (exclusive with max_loss).
        signal: the signal (or its file); the one the weights name when None.
        qat_steps: fine-tuning steps of each QAT run (0: post-training quantisation only).
        qat_lr: QAT learning rate (default: a tenth of the recipe's).
        max_qat_runs: at most this many QAT runs.
        seed: QAT sampler seed.
        origin_seed: the seed the model's initialisation was drawn with, if known (`inrkit fit --seed`):
            weights are coded as their change from it where that is smaller (`origin`).

    Returns:
        The stats of the written file; `spec` says which knobs won.

    Example:
        >>> stats = search_compress(model, "m.inrz", max_loss=0.1, signal=sig)  # doctest: +SKIP
        >>> stats.float_metrics["psnr"] - stats.metrics["psnr"] <= 0.1  # doctest: +SKIP
        True
    """
    if (max_loss is None) == (target_bpp is None):
        raise ConfigError("give exactly one of max_loss (dB) and target_bpp")
    check_inrz_name(path)
    if target_bpp is not None and target_bpp <= 0:
        raise ConfigError(f"target bpp must be above 0, got {target_bpp}")
    if max_loss is not None and max_loss < 0:
        raise ConfigError(f"max loss must be 0 dB or more, got {max_loss}")
    target = resolve_signal(model, signal)
    if target is None:
        raise ExportError("a target needs the signal to measure quality: pass it with --signal (signal=...)")
    from ..inference import evaluate

    float_metrics = evaluate(model, target)
    if "psnr" not in float_metrics:
        raise ConfigError(f"targets are measured in PSNR, which {target.kind} signals do not have; use --bits")
    run = dict(signal=target, float_metrics=float_metrics, qat_lr=qat_lr, seed=seed, origin_seed=origin_seed)
    if max_loss is not None:
        best = _smallest_within(model, max_loss, qat_steps, max_qat_runs, run)
    else:
        best = _best_under(model, target_bpp, qat_steps, max_qat_runs, run)
    data, _ = encode(best.model, best.spec, origin_seed)
    write_atomic(path, data)
    best.stats.path = str(path)
    return best.stats


def _ptq(model: nn.Module, prune: tuple[float, ...], run: dict) -> list[Probe]:
    """Every (width, per-channel, prune) setting without fine-tuning, by file size."""
    probes = [_probe(model, layer_spec(model, b, pc, p), qat_steps=0, **run)
              for p in prune for b in UNIFORM_WIDTHS for pc in (False, True)]
    return sorted(probes, key=lambda pr: pr.stats.bytes)


# Allocations for these multiples of the loss target's MSE budget: 1 should meet the target as it is;
# the larger ones are smaller files that QAT may bring back within it.
BUDGET_MULTIPLES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024)
# For a bpp target, allocations along the whole size-quality curve: MSE up by 1% to 4x.
BPP_MSE_RISES = (0.01, 0.04, 0.16, 0.64, 2.56, 4.0)


def _allocated(model: nn.Module, mse_rises: tuple[float, ...], run: dict) -> list[Probe]:
    """Per-tensor widths from measured sensitivity (`allocate`), one and one scale per channel, for MSE
    budgets of `mse_rises` times the float model's MSE."""
    from .allocate import allocate, allocated_spec, sensitivity_table

    probes = []
    for per_channel in (False, True):
        base, table = sensitivity_table(model, run["signal"], per_channel, origin_seed=run["origin_seed"])
        specs = {allocated_spec(allocate(table, base * rise), per_channel) for rise in mse_rises}
        probes += [_probe(model, spec, qat_steps=0, **run) for spec in specs]
    return probes


def _front(probes: list[Probe]) -> list[Probe]:
    """The settings no smaller setting beats, by file size: each loses less than every smaller one.

    The bisection assumes that a larger file loses less after QAT too; a setting that a smaller one
    beats before fine-tuning breaks that. SPDER's demo fit, after QAT: 6 bits everywhere (5.64
    bits/param) lost 2.9 dB, an allocation of 6.2 bits/param keeping its first layers at 10-12 bits
    gained 8.3 dB.
    """
    front, least = [], math.inf
    for probe in sorted(probes, key=lambda pr: pr.stats.bytes):
        if probe.loss < least:
            front.append(probe)
            least = probe.loss
    return front


def _smallest_within(model: nn.Module, max_loss: float, qat_steps: int, max_runs: int, run: dict) -> Probe:
    """Bisect the settings (by size) for the smallest that, fine-tuned, loses at most `max_loss`."""
    rise = 10 ** (max_loss / 10) - 1  # the MSE increase a loss of max_loss dB allows, relative
    allocated = _allocated(model, tuple(rise * k for k in BUDGET_MULTIPLES), run)
    probes = _front(_ptq(model, (0.0,), run) + allocated)
    fits = [i for i, pr in enumerate(probes) if pr.loss <= max_loss]
    best = probes[fits[0]] if fits else None
    low, high = 0, fits[0] if fits else len(probes)
    tried: list[Probe] = []
    while qat_steps > 0 and low < high and len(tried) < max_runs:
        mid = (low + high) // 2
        tuned = _probe(model, probes[mid].spec, qat_steps=qat_steps, **run)
        tried.append(tuned)
        if tuned.loss <= max_loss:
            best, high = tuned if best is None or tuned.stats.bytes < best.stats.bytes else best, mid
        else:
            low = mid + 1
    if best is None:
        nearest = min(probes + tried, key=lambda pr: pr.loss)
        raise ExportError(f"no setting loses at most {max_loss:g} dB; nearest: {nearest.describe()}")
    return best


def _best_under(model: nn.Module, target_bpp: float, qat_steps: int, max_runs: int, run: dict) -> Probe:
    """The best-PSNR setting whose file stays within `target_bpp`, fine-tuned when that helps."""
    probes = _ptq(model, PRUNE[:1], run)
    if probes[0].stats.bpp is None:
        raise ExportError("the model's signal layout is unknown, so its bpp cannot be measured")
    probes = sorted(probes + _allocated(model, BPP_MSE_RISES, run), key=lambda pr: pr.stats.bytes)
    under = [pr for pr in probes if pr.stats.bpp <= target_bpp]
    if not under:  # pruning only when no unpruned setting fits: it costs more than a width step
        probes = sorted(probes + _ptq(model, PRUNE[1:], run), key=lambda pr: pr.stats.bytes)
        under = [pr for pr in probes if pr.stats.bpp <= target_bpp]
    if not under:
        raise ExportError(f"{target_bpp:g} bpp is below the smallest file this model can be stored in; nearest: "
                          f"{probes[0].describe()} (fit a smaller model)")
    best = max(under, key=lambda pr: pr.stats.metrics["psnr"])
    # QAT for the largest settings that no smaller one beats, nearest the target first: a larger file that
    # rounds worse than a smaller one spends a run for nothing (see `_front`)
    for candidate in _front(under)[::-1][:max_runs] if qat_steps > 0 else []:
        tuned = _probe(model, candidate.spec, qat_steps=qat_steps, **run)
        if tuned.stats.bpp <= target_bpp and tuned.stats.metrics["psnr"] > best.stats.metrics["psnr"]:
            best = tuned
    return best
