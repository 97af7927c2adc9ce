"""Signal -> batches of (coords, targets) in model units, on the training device.

Grid signals compute coordinates from flat indices per batch, so a random batch of a long video
never needs a coordinate tensor for the whole signal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from .signals import Signal

Batch = tuple[torch.Tensor, torch.Tensor]
FULL_BATCH_LIMIT = 1 << 18  # below this many samples a step sees the whole signal by default
PERMUTE_LIMIT = 1 << 20  # up to this many samples an epoch is a permutation (8 MiB of indices at most)


def full_batch(signal: Signal, to_model: Callable[[torch.Tensor], torch.Tensor],
               device: torch.device) -> Iterator[Batch]:
    """Every step sees every sample; coordinates and targets are built once and kept on the device."""
    coords = signal.coords().to(device)
    targets = to_model(signal.targets()).to(device)
    while True:
        yield coords, targets


def random_batches(signal: Signal, batch_size: int, to_model: Callable[[torch.Tensor], torch.Tensor],
                   device: torch.device, generator: torch.Generator) -> Iterator[Batch]:
    """Epochs of random permutations (each sample once per epoch), `batch_size` samples per step.

    Signals over 2^20 samples draw indices with replacement instead: a permutation costs 8 bytes a
    sample, which would make a fit's memory grow with the signal beyond the signal itself.
    """
    n = signal.num_samples
    while True:
        if n <= PERMUTE_LIMIT:
            order = torch.randperm(n, generator=generator)
            pieces = order.split(batch_size)
        else:
            pieces = (torch.randint(n, (batch_size,), generator=generator) for _ in range(max(1, n // batch_size)))
        for index in pieces:
            yield signal.coords(index).to(device), to_model(signal.targets(index)).to(device)


def samples_per_step(n: int, batch_size: int | None) -> int:
    """Samples a step sees: the batch size (at most the signal), or by default the whole signal up to 2^18."""
    return min(batch_size, n) if batch_size else min(n, FULL_BATCH_LIMIT)


def make_sampler(signal: Signal, batch_size: int | None, to_model: Callable[[torch.Tensor], torch.Tensor],
                 device: torch.device, generator: torch.Generator) -> tuple[Iterator[Batch], bool]:
    """The default sampler for a signal; returns it and whether each step sees the whole signal."""
    n = signal.num_samples
    batch_size = samples_per_step(n, batch_size)
    if batch_size >= n:
        return full_batch(signal, to_model, device), True
    return random_batches(signal, batch_size, to_model, device, generator), False


ErrorFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(coords, targets in model units) -> per-sample error (N,), computed without gradients."""


def teaching_ratio(step: int, steps: int, start: float = 0.2, stages: int = 10) -> float:
    """INT's "step" schedule: the kept fraction rises from `start` to 1 in `stages` equal stages."""
    stage = step // max(1.0, steps / stages)
    return min(start + stage * (1.0 - start) / stages, 1.0)


def teaching_interval(step: int, steps: int, startup: float = 0.25, increments: int = 5,
                      max_interval: int = 50) -> int:
    """INT's "incremental" strategy: re-select every step during start-up, then ever more rarely.

    After the first quarter of the fit the selection is refreshed every 10, 20, ... 50 steps
    (`max_interval / increments` more per stage), as in the authors' `strategy.incremental`.
    """
    startup_step = int(steps * startup)
    stage_len = max(1, (steps - startup_step) // increments)
    if step < startup_step or step // stage_len == 0:
        return 1
    return max(1, max_interval // increments * (max(1, step - startup_step) // stage_len + 1))


def teaching_batches(signal: Signal, batch_size: int, to_model: Callable[[torch.Tensor], torch.Tensor],
                     device: torch.device, generator: torch.Generator, error: ErrorFn, steps: int,
                     start: int = 0) -> Iterator[Batch]:
    """Implicit Neural Teaching (Zhang et al., ICML 2024): train on the samples the model gets most wrong.

    At each selection the current model scores a pool (the whole signal when it fits in one batch, as
    in the paper; otherwise `batch_size / ratio` random samples) by the L1 error summed over channels,
    and the step trains on the top-k: `ratio` of the signal (full batch) or `batch_size` samples (random
    batches). The ratio follows the authors' step schedule (20% rising to 100%) and the selection is
    refreshed on their incremental schedule, reused in between.
    """
    n, step, batch = signal.num_samples, start, None
    while True:
        ratio = teaching_ratio(step, steps)
        if batch is None or step % teaching_interval(step, steps) == 0:
            if batch_size >= n:
                pool = None
                keep = max(1, int(ratio * n))
            else:
                pool = torch.randint(n, (min(n, int(batch_size / ratio)),), generator=generator)
                keep = min(batch_size, len(pool))
            coords, targets = signal.coords(pool).to(device), to_model(signal.targets(pool)).to(device)
            if keep < len(coords):
                with torch.no_grad():
                    top = error(coords, targets).topk(keep).indices
                coords, targets = coords[top], targets[top]
            batch = (coords, targets)
        yield batch
        step += 1
