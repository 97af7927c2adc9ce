"""Engine options (precision, compile, threads, host syncs), recipes and the INT sampler, as a user sees them."""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
import sys

import numpy as np
import pytest
import torch

from inrkit import FitConfig, create_model, fit, load_signal
from inrkit.errors import ConfigError, ModelError
from inrkit.fit import lr_factor, resolve_config
from inrkit.samplers import teaching_batches, teaching_interval, teaching_ratio


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:16, 0:16] / 16
    picture = np.stack([np.sin(6 * x), np.cos(5 * y), x * y], -1) * 0.4 + 0.5 + 0.02 * rng.random((16, 16, 3))
    return load_signal(picture.astype(np.float32))


def small_siren(signal, **kwargs):
    torch.manual_seed(0)
    return create_model("siren", signal=signal, hidden_features=32, hidden_layers=1, **kwargs)


@pytest.mark.parametrize("precision", ["bf16", "fp16", "tf32"])
def test_mixed_precision_fits_still_learn(image, precision: str) -> None:
    result = fit(small_siren(image), image, FitConfig(steps=60, lr=1e-3, precision=precision, progress=False,
                                                      device="cpu"))
    assert result.metrics["psnr"] > 22  # fp32 reaches about 30 dB here; an untrained net about 10 dB
    assert all(p.dtype == torch.float32 for p in result.model.parameters())  # weights stay float32


def test_a_bf16_fit_with_an_fp32_finish_wins_back_what_bf16_rounding_costs(image) -> None:
    psnr = {}
    for precision in ("fp32", "bf16", "bf16-fp32"):
        config = FitConfig(steps=300, lr=1e-3, precision=precision, progress=False, device="cpu")
        psnr[precision] = fit(small_siren(image), image, config).metrics["psnr"]
    # measured: fp32 56.8 dB, bf16 41.1 dB (8 significant bits cap it), bf16-fp32 55.6 dB
    assert psnr["bf16-fp32"] > psnr["bf16"] + 8
    assert psnr["bf16-fp32"] > psnr["fp32"] - 2.5


def test_a_full_batch_fit_stopped_at_its_target_returns_the_weights_that_reached_it(image) -> None:
    torch.manual_seed(0)
    model = create_model("ngp", signal=image)
    result = fit(model, image, FitConfig(steps=300, lr=0.03, target_psnr=40, progress=False, device="cpu"))
    assert result.steps < 300 and result.history[-1]["psnr"] >= 40
    # the progress PSNR of a full batch is its loss, taken before the step's update; the weights returned
    # are those weights (measured: 40.69 dB either way; one update later they scored 41.76)
    assert result.metrics["psnr"] == pytest.approx(result.history[-1]["psnr"], abs=1e-3)


def test_unknown_engine_options_are_refused() -> None:
    with pytest.raises(ConfigError, match="precision"):
        FitConfig(precision="fp8")
    with pytest.raises(ConfigError, match="sampler"):
        FitConfig(sampler="greedy")
    with pytest.raises(ConfigError, match="threads"):
        FitConfig(threads=0)


def test_compile_falls_back_to_eager_with_one_warning(image, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(model, **_):
        def run(coords):
            raise RuntimeError("no compiler here")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(UserWarning, match="torch.compile failed"):
        result = fit(small_siren(image), image, FitConfig(steps=20, lr=1e-3, compile=True, progress=False,
                                                          device="cpu"))
    assert result.steps == 20 and result.metrics["psnr"] > 15


def test_the_loss_is_read_back_only_every_read_every_steps(image, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = []
    real = torch.Tensor.__float__
    monkeypatch.setattr(torch.Tensor, "__float__", lambda t: reads.append(1) or real(t))
    fit(small_siren(image), image, FitConfig(steps=100, read_every=25, log_every=50, eval_every=50,
                                             progress=False, device="cpu"))
    assert len(reads) <= 8  # 4 reads of the loss and the evaluation's own; one a step would be 100


def test_threads_are_restored_after_a_fit(image) -> None:
    before = torch.get_num_threads()
    fit(small_siren(image), image, FitConfig(steps=2, threads=1, progress=False, device="cpu"))
    assert torch.get_num_threads() == before


def _denormals_survive() -> bool:
    return float(torch.tensor([1e-39]) * torch.tensor([1.0])) != 0.0


def _fit(model, signal) -> None:
    fit(model, signal, FitConfig(steps=2, progress=False, device="cpu"))


def _qat(model, signal) -> None:
    from inrkit.export.qat import finetune_quantized
    from inrkit.export.quantize import QuantSpec

    finetune_quantized(model, signal, QuantSpec(bits=6), steps=2, progress=False)


@pytest.mark.parametrize(("module", "train"), [("inrkit.fit", _fit), ("inrkit.export.qat", _qat)])
def test_denormals_are_flushed_while_training_and_kept_after(image, monkeypatch: pytest.MonkeyPatch, module: str,
                                                            train) -> None:
    owner = importlib.import_module(module)  # `inrkit.fit` the attribute is the function, not the module
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush denormals")
    seen = []

    def step(*args, **kwargs):
        seen.append(_denormals_survive())
        return train_step(*args, **kwargs)

    train_step = owner.train_step
    monkeypatch.setattr(owner, "train_step", step)
    train(small_siren(image), image)
    assert seen == [False, False] and _denormals_survive()


def test_a_caller_that_flushes_denormals_still_flushes_after_a_fit(image) -> None:
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush denormals")
    try:
        _fit(small_siren(image), image)
        assert not _denormals_survive()
    finally:
        torch.set_flush_denormal(False)


def test_writing_a_run_reuses_the_final_evaluation(image, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from inrkit.runs import write_run

    model = small_siren(image)
    result = fit(model, image, FitConfig(steps=5, progress=False, device="cpu"))
    calls = []
    monkeypatch.setattr(model, "forward", lambda coords: calls.append(len(coords)) or torch.zeros(len(coords), 3))
    write_run(result, image, tmp_path)
    assert calls == [] and (tmp_path / "reconstruction.png").exists()
    with torch.no_grad():  # once the weights change, the cached grid is not the model's any more
        next(model.parameters()).add_(1.0)
    write_run(result, image, tmp_path)
    assert sum(calls) == 16 * 16


def test_warm_up_then_decay() -> None:
    factor = lr_factor(FitConfig(steps=100, warmup=10, lr_decay=0.1))
    assert factor(0) == pytest.approx(0.01) and factor(10) == pytest.approx(0.1 ** 0.1)
    assert factor(100) == pytest.approx(0.1)


def test_the_fast_recipe_is_recorded_and_followed(image) -> None:
    model = create_model("siren", signal=image, recipe="fast")
    assert model.model_info.recipe == "fast"
    fast, authors = resolve_config(FitConfig(), model, image), resolve_config(FitConfig(recipe="authors"), model, image)
    assert fast.recipe == "fast" and fast.lr > authors.lr
    with pytest.raises(ModelError, match="unknown recipe"):
        create_model("siren", signal=image, recipe="quick")


def test_tuned_fast_recipes_keep_the_authors_network_and_optimiser() -> None:
    from inrkit.models import get_entry

    n = 128 * 128
    authors, fast = (get_entry("neurbf").recipe("image", name, n) for name in ("authors", "fast"))
    assert fast.model_kwargs() == authors.model_kwargs() and (fast.betas, fast.eps) == (authors.betas, authors.eps)
    assert (fast.batch_size, fast.lr_decay) == (n // 4, 1.0)  # quarter batches at a constant rate
    protocol = [(r.lr, r.lr_decay, r.batch_size, r.steps) for r in
                (get_entry("gauss").recipe("image", name, n) for name in ("authors", "fast"))]
    assert protocol[0] == protocol[1]  # Gauss's own recipe won its search


def test_teaching_schedules_follow_the_authors() -> None:
    assert teaching_ratio(0, 1000) == pytest.approx(0.2) and teaching_ratio(999, 1000) == pytest.approx(0.92)
    assert teaching_interval(100, 1000) == 1  # every step during the first quarter
    assert teaching_interval(300, 1000) == 10 and teaching_interval(999, 1000) == 50


def test_teaching_trains_on_the_worst_samples(image) -> None:
    bad = torch.zeros(image.num_samples, dtype=torch.bool)
    bad[:20] = True  # the model is wrong only at these samples

    def error(coords, targets):
        hit = (coords[:, None, :] == image.coords()[bad][None]).all(-1).any(-1)
        return hit.float() + 0.01 * torch.rand(len(coords))

    batches = teaching_batches(image, image.num_samples, lambda v: v, torch.device("cpu"),
                               torch.Generator().manual_seed(0), error, steps=100)
    coords, _ = next(batches)
    assert len(coords) == int(0.2 * image.num_samples)
    chosen = (coords[:, None, :] == image.coords()[bad][None]).all(-1).any(-1)
    assert chosen.sum() == 20  # every wrong sample is in the batch


def test_int_sampler_fits(image) -> None:
    result = fit(small_siren(image), image, FitConfig(steps=60, lr=1e-3, sampler="int", progress=False,
                                                      device="cpu"))
    assert result.metrics["psnr"] > 22


def test_budgets_in_epochs_samples_and_seconds(image) -> None:
    n = image.num_samples  # 256: one full-batch step is one epoch
    model = small_siren(image)
    assert resolve_config(FitConfig(epochs=3, batch_size=64), model, image).steps == 12
    assert resolve_config(FitConfig(samples=1000, batch_size=100), model, image).steps == 10
    assert resolve_config(FitConfig(epochs=2), model, image).steps == 2 * n // n
    with pytest.raises(ConfigError, match="one budget"):
        FitConfig(steps=10, epochs=2)
    result = fit(model, image, FitConfig(seconds=0.5, progress=False, device="cpu"))
    assert 0.5 <= result.seconds < 5 and result.steps > 1  # stopped by the clock, not by a step count


@pytest.mark.slow
def test_a_compiled_fit_saves_and_loads_like_any_other(image, tmp_path) -> None:
    from inrkit import load, save

    result = fit(small_siren(image), image, FitConfig(steps=20, lr=1e-3, compile=True, progress=False, device="cpu"))
    eager = fit(small_siren(image), image, FitConfig(steps=20, lr=1e-3, progress=False, device="cpu"))
    save(result.model, tmp_path / "m.safetensors")
    coords = torch.rand(50, 2) * 2 - 1
    assert torch.allclose(load(tmp_path / "m.safetensors")(coords), result.model(coords), atol=1e-6)
    assert result.metrics["psnr"] == pytest.approx(eager.metrics["psnr"], abs=1e-3)  # the same training


def test_adam_is_fused_where_it_can_be_and_plain_for_complex_weights() -> None:
    from inrkit.engine import adam

    real = torch.nn.Parameter(torch.ones(3))
    fused, plain = adam([real], lr=0.1), torch.optim.Adam([torch.nn.Parameter(torch.ones(3))], lr=0.1)
    assert fused.defaults["fused"] is True  # this machine's PyTorch has the CPU kernel
    for opt in (fused, plain):  # the same update rule as the plain Adam
        opt.param_groups[0]["params"][0].grad = torch.tensor([1.0, -2.0, 0.5])
        opt.step()
    torch.testing.assert_close(real, plain.param_groups[0]["params"][0])
    wire_like = torch.nn.Parameter(torch.ones(3, dtype=torch.complex64))  # WIRE: no fused kernel for complex
    opt = adam([wire_like], lr=0.1)
    wire_like.grad = torch.ones(3, dtype=torch.complex64)
    opt.step()
    assert not opt.defaults["fused"] and torch.isfinite(torch.view_as_real(wire_like)).all()


def test_a_full_batch_fit_finds_neurbfs_neighbours_once(image, monkeypatch: pytest.MonkeyPatch) -> None:
    # The nearest-centre search is most of a NeuRBF step; on a full batch the same coordinates come back
    # every step, so the model's cache must see the same tensor (a per-step split made it search 30 times).
    from inrkit.models import neurbf_init

    calls = []
    real = neurbf_init.nearest
    monkeypatch.setattr(neurbf_init, "nearest", lambda *a, **k: calls.append(1) or real(*a, **k))

    def searches(steps: int) -> int:
        calls.clear()
        torch.manual_seed(0)
        model = create_model("neurbf", signal=image, num_kernels=16)
        fit(model, image, FitConfig(steps=steps, eval_every=1000, progress=False, device="cpu"))
        return len(calls)

    assert searches(40) == searches(10)  # k-means and the final evaluation only: nothing per step


FAULTS_CHILD = """
import resource, sys, torch
from inrkit.engine import keep_freed_memory
kept = sys.argv[1] == "kept" and keep_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(6):  # a training step's life: allocate an activation, write it, free it
    torch.empty(64 << 18).fill_(1.0)  # 64 MiB
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


glibc_only = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="mallopt is glibc's")


@glibc_only
def test_training_reuses_freed_memory_instead_of_faulting_in_fresh_pages() -> None:
    """glibc maps big blocks afresh each time by default; after `keep_freed_memory` it reuses them."""
    pages = (64 << 20) // 4096
    faults = {}
    for mode in ("default", "kept"):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
        out = subprocess.run([sys.executable, "-c", FAULTS_CHILD, mode], capture_output=True, text=True, check=True,
                             env=env)
        kept, count = out.stdout.split()
        faults[mode] = int(count)
        assert kept == str(mode == "kept")
    assert faults["default"] > 5 * pages  # each of the six allocations faults its pages in again
    assert faults["kept"] < 2.5 * pages  # the first one does (or two: measured 1.0-2.0 x pages)


@glibc_only
def test_a_users_own_malloc_settings_are_kept() -> None:
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "1048576"}
    code = "from inrkit.engine import keep_freed_memory; print(keep_freed_memory())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "False"
