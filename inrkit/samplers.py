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


def full_batch(signal: Signal, to_model: Callable[[torch.Tensor], torch.Tensor], device: torch.device) -> Iterator[Batch]:
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


def make_sampler(signal: Signal, batch_size: int | None, to_model: Callable[[torch.Tensor], torch.Tensor],
                 device: torch.device, generator: torch.Generator) -> tuple[Iterator[Batch], bool]:
    """The default sampler for a signal; returns it and whether each step sees the whole signal."""
    n = signal.num_samples
    if batch_size is None:
        batch_size = n if n <= FULL_BATCH_LIMIT else FULL_BATCH_LIMIT
    if batch_size >= n:
        return full_batch(signal, to_model, device), True
    return random_batches(signal, batch_size, to_model, device, generator), False
