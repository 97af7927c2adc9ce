"""How a training step runs on the hardware: precision, torch.compile and threads.

These are `FitConfig` options; `fit` (and anything else that trains) calls `engine_settings` once
and `train_step` every step, and knows nothing else about them. Every option defaults to off: bf16
pays only on CPUs with bf16 units (AVX512-BF16, AMX) and on GPUs, compile after its first-step cost
(benchmarks/results/speed.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import platform
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .errors import ConfigError
from .samplers import FULL_BATCH_LIMIT

PRECISIONS = ("fp32", "tf32", "bf16", "fp16", "bf16-fp32")
FP32_FINISH = 0.8  # "bf16-fp32": the fraction of the fit trained in bf16 before the fp32 finish
Regulariser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    return precision


@dataclass
class Engine:
    """The forward function and mixed-precision state of one fit.

    Attributes:
        forward: the model, or its `torch.compile`d version (same parameters, so saving is unchanged).
        autocast: dtype of autocast regions (None: full precision).
        scaler: gradient scaler for fp16, where small gradients would underflow.
        fp32_from: the fraction of the fit from which autocast stops (None: never).
    """

    forward: Callable[[torch.Tensor], torch.Tensor]
    device: torch.device
    autocast: torch.dtype | None = None
    scaler: torch.amp.GradScaler | None = None
    fp32_from: float | None = None

    def advance(self, done: float) -> None:
        """Tell the engine how far the fit is (0 to 1): past `fp32_from` the steps run in full precision.

        bf16 rounds activations and gradients to 8 significant bits, which caps a SIREN near 47 dB about
        0.8 dB below fp32; a last fifth in fp32 wins that back at a fraction of fp32's cost (speed.md).
        """
        if self.fp32_from is not None and done >= self.fp32_from:
            self.autocast = None

    def region(self) -> contextlib.AbstractContextManager:
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast)


def adam(params: Iterable[torch.Tensor], **settings: Any) -> torch.optim.Adam:
    """Adam whose update runs as one fused kernel where this PyTorch has one for the device (CPUs since
    2.4): the same update rule, and on a 2-core CPU about 6% off a 256-wide SIREN step; else the plain one."""
    params = list(params)
    if all(p.is_floating_point() for p in params):  # not WIRE's complex weights: no fused kernel for those
        try:
            return torch.optim.Adam(params, fused=True, **settings)
        except RuntimeError:  # an older PyTorch without the kernel for this device
            pass
    return torch.optim.Adam(params, **settings)


def build_engine(model: nn.Module, device: torch.device, precision: str = "fp32", compile: bool = False) -> Engine:
    """The engine for `model`: autocast for bf16/fp16 (and bf16-fp32 until its finish), a loss scaler for fp16,
    compile where asked.

    Example:
        >>> from torch import nn
        >>> build_engine(nn.Linear(2, 1), torch.device("cpu")).autocast is None
        True
    """
    check_precision(precision)
    dtype = {"bf16": torch.bfloat16, "bf16-fp32": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    finish = FP32_FINISH if precision == "bf16-fp32" else None
    return Engine(compiled(model) if compile else model, device, dtype, scaler, finish)


def compiled(model: nn.Module, dynamic: bool | None = False) -> Callable[[torch.Tensor], torch.Tensor]:
    """`torch.compile(model)`, falling back to the model itself (one warning) where compiling fails.

    Compilation happens at the first call, so that is where a missing compiler shows up. `dynamic=None`
    lets a second input shape compile one graph for every shape (fit_many's stack shrinks as members leave).
    """
    fn: Callable[[torch.Tensor], torch.Tensor] = torch.compile(model, dynamic=dynamic)

    def forward(coords: torch.Tensor) -> torch.Tensor:
        nonlocal fn
        if fn is not model:
            try:
                return fn(coords)
            except Exception as exc:  # noqa: BLE001  (no compiler, unsupported op or platform)
                warnings.warn(f"torch.compile failed ({type(exc).__name__}); training uncompiled", stacklevel=2)
                fn = model
        return fn(coords)

    return forward


MMAP_THRESHOLD = 256 << 20  # glibc: heap-allocate blocks below this instead of mapping fresh pages each time
TRIM_THRESHOLD = 512 << 20  # ...and give freed memory back to the system only beyond this much


@functools.cache
def keep_freed_memory() -> bool:
    """Let glibc's malloc reuse freed memory for large tensors instead of returning it to the system.

    By default glibc maps every block over 128 KiB-32 MiB afresh and unmaps it when freed, so each
    activation a CPU step allocates starts with page faults that zero it: 3.5 million faults in ten
    steps of SIREN 256x3 on a 256² crop, a third of the step. Raising the thresholds keeps the pages
    in the process: that fit runs 1.5x faster (benchmarks/results/malloc.md). Process-wide and not
    undone (glibc cannot report its old settings); the cost is up to TRIM_THRESHOLD of freed memory
    the process keeps for its next tensors. A process started with glibc's own malloc settings
    (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ or GLIBC_TUNABLES) keeps them. Returns whether the
    settings took (glibc only).
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if any(os.environ.get(v) for v in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")):
        return False  # the user chose
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    return bool(mallopt(m_mmap_threshold, MMAP_THRESHOLD)) and bool(mallopt(m_trim_threshold, TRIM_THRESHOLD))


def flushing_denormals() -> bool:
    """Whether this thread flushes float32 denormals to 0 (torch can set it but has no getter): a
    denormal times 2 is still a denormal unless flushing is on."""
    return (torch.tensor([1e-39]) * 2.0).item() == 0.0


@contextlib.contextmanager
def engine_settings(precision: str = "fp32", threads: int | None = None) -> Iterator[None]:
    """TF32 matmuls, the thread count and CPU denormal flushing for the duration of a fit; glibc's
    malloc keeps freed memory from then on (`keep_freed_memory`).

    The caller's thread count and TF32 settings come back after. Denormals (float32 below 1.2e-38)
    are flushed to 0 while training: products of tiny activations and gradients in a matmul make
    them, CPUs compute them far slower, and no fit can see them (`benchmarks/results/denormals.md`).
    The caller's flushing comes back after too.
    """
    old_threads, old_tf32 = torch.get_num_threads(), torch.backends.cuda.matmul.allow_tf32
    old_cudnn, old_flush = torch.backends.cudnn.allow_tf32, flushing_denormals()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        if precision == "tf32":
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        torch.set_flush_denormal(True)
        keep_freed_memory()
        yield
    finally:
        torch.set_flush_denormal(old_flush)
        torch.set_num_threads(old_threads)
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old_tf32, old_cudnn


def train_step(engine: Engine, optimizer: torch.optim.Optimizer, batch: tuple[torch.Tensor, torch.Tensor],
               loss_fn: LossFn, regulariser: Regulariser | None = None, chunk: int = FULL_BATCH_LIMIT) -> torch.Tensor:
    """One optimisation step; returns the loss before the update as a detached tensor (no host sync).

    `regulariser(coords, output)` adds a term that may differentiate the output by the coordinates.
    The loss itself is computed in float32 whatever the autocast dtype. A batch over `chunk` samples
    (a long clip trained whole, as SIREN's audio recipe does) runs through the network in pieces whose
    gradients add up to the whole batch's, so a step's memory stops growing with the signal.
    """
    coords, targets = batch
    optimizer.zero_grad(set_to_none=True)
    # The batch itself where it fits in one piece: a split would hand the model a new tensor each step,
    # which defeats caches keyed on the coordinates (NeuRBF's nearest centres of a full batch).
    pieces = [(coords, targets)] if len(coords) <= chunk else list(zip(coords.split(chunk), targets.split(chunk)))
    losses = []
    for piece, wanted in pieces:
        loss = _loss(engine, piece, wanted, loss_fn, regulariser)
        if len(pieces) > 1:  # each piece's share of the whole batch's mean
            loss = loss * (len(piece) / len(coords))
        (engine.scaler.scale(loss) if engine.scaler is not None else loss).backward()
        losses.append(loss.detach())
    if engine.scaler is not None:
        engine.scaler.step(optimizer)
        engine.scaler.update()
    else:
        optimizer.step()
    return losses[0] if len(losses) == 1 else torch.stack(losses).sum()


def _loss(engine: Engine, coords: torch.Tensor, targets: torch.Tensor, loss_fn: LossFn,
          regulariser: Regulariser | None) -> torch.Tensor:
    if regulariser is not None:
        coords = coords.detach().requires_grad_(True)
    with engine.region():
        output = engine.forward(coords)
    loss = loss_fn(output.float(), targets)
    if regulariser is not None:
        loss = loss + regulariser(coords, output.float())
    return loss
