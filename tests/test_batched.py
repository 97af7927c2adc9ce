"""fit_many: each member of a batched fit is the fit `fit` would make, and members stop on their own."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

import inrkit
from inrkit.batched import fit_many


@pytest.fixture
def crops(crop64: np.ndarray) -> list[inrkit.Signal]:
    """Four different 16x16 RGB crops of a real photograph."""
    return [inrkit.load_signal(crop64[y:y + 16, x:x + 16] / 255.0) for y, x in ((0, 0), (0, 16), (16, 0), (40, 40))]


def small(name: str):
    return lambda sig: inrkit.create_model(name, signal=sig, hidden_features=16, hidden_layers=2)


def sequential(member: inrkit.Member, factory, config: inrkit.FitConfig) -> inrkit.FitResult:
    torch.manual_seed(member.seed)
    return inrkit.fit(factory(member.signal), member.signal, replace(config, seed=member.seed))


# Not bit-exact: the stacked forward runs batched matrix products (and a per-member mean of the loss)
# whose float32 summation order differs from a single fit's matmuls; the difference is ~1e-7 relative
# per step and grows slowly over steps, so the bound is checked after a few dozen steps.
@pytest.mark.parametrize("name", ["siren", "gauss", "spder", "wire", "ffn", "fkan", "sl2a"])
def test_each_member_matches_a_sequential_fit(crops: list[inrkit.Signal], name: str) -> None:
    config = inrkit.FitConfig(steps=25, device="cpu", progress=False)
    members = fit_many(crops, small(name), config)
    assert [m.seed for m in members] == [0, 1, 2, 3] and all(m.status == "done" for m in members)
    for member in members:
        single = sequential(member, small(name), config)
        got, want = member.result.history[-1]["loss"], single.history[-1]["loss"]
        assert abs(got - want) <= 1e-4 * abs(want), (name, member.seed, got, want)
        assert member.result.metrics["psnr"] == pytest.approx(single.metrics["psnr"], abs=1e-3)
        assert member.result.steps == single.steps == 25


def test_random_batches_and_seeds_of_one_signal(crops: list[inrkit.Signal]) -> None:
    config = inrkit.FitConfig(steps=20, batch_size=64, device="cpu", progress=False)
    members = fit_many(crops[:1], small("siren"), config, seeds=[3, 7])
    assert [m.seed for m in members] == [3, 7]
    for member in members:
        single = sequential(member, small("siren"), config)
        assert member.result.history[-1]["loss"] == pytest.approx(single.history[-1]["loss"], rel=1e-4)
    assert members[0].result.history[-1]["loss"] != members[1].result.history[-1]["loss"]


def test_a_diverging_member_stops_alone(crops: list[inrkit.Signal]) -> None:
    bad = crops[1]

    def factory(sig: inrkit.Signal) -> inrkit.models.base.Backbone:
        net = small("siren")(sig)
        if sig is bad:
            with torch.no_grad():
                next(net.parameters()).fill_(float("nan"))
        return net

    members = fit_many(crops, factory, inrkit.FitConfig(steps=10, device="cpu", progress=False))
    assert [m.status for m in members] == ["done", "diverged", "done", "done"]
    assert members[1].result is None and "step 1" in members[1].error
    assert all(np.isfinite(m.result.metrics["psnr"]) for m in members if m.result)


def test_target_psnr_stops_each_member_at_its_own_step(crops: list[inrkit.Signal]) -> None:
    config = inrkit.FitConfig(steps=300, device="cpu", progress=False, target_psnr=20.0)
    members = fit_many(crops, small("siren"), config)
    steps = [m.result.steps for m in members]
    assert all(m.status == "target" for m in members) and len(set(steps)) > 1
    for member in members:
        assert member.result.history[-1]["psnr"] >= 20.0 and member.result.time_to_target is not None
    single = sequential(members[2], small("siren"), config)
    assert single.steps == members[2].result.steps


def test_compiled_members_train_as_eager_ones_while_the_stack_shrinks(crops: list[inrkit.Signal]) -> None:
    config = inrkit.FitConfig(steps=60, lr=1e-3, device="cpu", progress=False, target_psnr=24.0)
    eager = fit_many(crops, small("siren"), config)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", "torch.compile failed|uncompiled")  # a fallback to eager warns
        compiled = fit_many(crops, small("siren"), replace(config, compile=True))
    assert len({m.result.steps for m in eager}) > 1  # members left at different steps: the stack shrank
    for a, b in zip(eager, compiled):
        assert (a.status, a.result.steps) == (b.status, b.result.steps)
        assert b.result.history[-1]["loss"] == pytest.approx(a.result.history[-1]["loss"], rel=1e-3)


def test_mixed_shapes_or_kinds_are_one_clear_error(crops: list[inrkit.Signal], tiny_rgb: np.ndarray) -> None:
    bigger = inrkit.load_signal(np.zeros((20, 16, 3), np.float32))
    with pytest.raises(inrkit.ConfigError, match="one kind and shape"):
        fit_many([crops[0], bigger], "siren", inrkit.FitConfig(steps=1, progress=False))
    with pytest.raises(inrkit.ConfigError, match="one seed per signal"):
        fit_many(crops, "siren", inrkit.FitConfig(steps=1, progress=False), seeds=[1, 2])


def test_shared_init_starts_every_member_from_the_same_weights(crops: list[inrkit.Signal]) -> None:
    config = inrkit.FitConfig(steps=1, lr=1e-12, device="cpu", progress=False)
    shared = fit_many(crops[:2], small("siren"), config, init="shared")
    rand = fit_many(crops[:2], small("siren"), config)
    first = [next(m.result.model.parameters()) for m in shared]
    assert torch.allclose(first[0], first[1], atol=1e-9)
    assert not torch.allclose(*[next(m.result.model.parameters()) for m in rand])


def test_an_init_for_another_size_is_refused(crops: list[inrkit.Signal]) -> None:
    other = inrkit.create_model("siren", signal=crops[0], hidden_features=8, hidden_layers=1)
    with pytest.raises(inrkit.ConfigError, match="init is for siren"):
        fit_many(crops, small("siren"), inrkit.FitConfig(steps=1, progress=False), init=other)


@pytest.mark.parametrize(("name", "engine"), [("siren", "stacked"), ("wire", "stacked"), ("ffn", "stacked"),
                                              ("relu_pe", "stacked"), ("fkan", "stacked"),
                                              ("sl2a", "stacked"), ("ngp", "vmap")])
def test_auto_engine_stacks_linear_backbones_and_vmaps_the_rest(crops: list[inrkit.Signal], name: str,
                                                                 engine: str) -> None:
    members = fit_many(crops[:2], small(name), inrkit.FitConfig(steps=1, device="cpu", progress=False))
    assert [m.engine for m in members] == [engine, engine]


def test_stacked_and_vmap_engines_fit_the_same_members(crops: list[inrkit.Signal]) -> None:
    # FFN: each member has its own fixed Fourier matrix B, stacked as a per-member buffer
    config = inrkit.FitConfig(steps=15, device="cpu", progress=False)
    stacked = fit_many(crops[:3], small("ffn"), config, engine="stacked")
    vmapped = fit_many(crops[:3], small("ffn"), config, engine="vmap")
    for a, b in zip(stacked, vmapped):
        assert a.result.history[-1]["loss"] == pytest.approx(b.result.history[-1]["loss"], rel=1e-4)
    with pytest.raises(inrkit.ConfigError, match="cannot run stacked"):
        fit_many(crops[:2], small("ngp"), config, engine="stacked")


def broken_siren(bad: inrkit.Signal, value: float):
    """A model factory whose member for `bad` starts with a weight tensor full of `value` (it will diverge)."""

    def factory(sig: inrkit.Signal) -> inrkit.models.base.Backbone:
        net = small("siren")(sig)
        if sig is bad:
            with torch.no_grad():
                next(net.parameters()).fill_(value)
        return net

    return factory


def test_losses_read_every_k_steps_still_catch_divergence(crops: list[inrkit.Signal]) -> None:
    factory = broken_siren(crops[0], float("inf"))
    config = inrkit.FitConfig(steps=12, read_every=4, log_every=6, eval_every=6, device="cpu", progress=False)
    members = fit_many(crops[:3], factory, config)
    assert members[0].engine == "stacked"
    assert members[0].status == "diverged" and "step 4" in members[0].error
    assert [row["step"] for row in members[1].result.history] == [6, 12]
    assert members[1].result.history[-1]["samples"] == 12 * 256


def test_members_in_cache_sized_groups_leave_alone_and_match_sequential_fits(
        crops: list[inrkit.Signal], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("inrkit.members.CACHE_BYTES", 4 * 256 * 16 * 2)  # groups of two 16² members of width 16

    factory = broken_siren(crops[1], float("nan"))
    config = inrkit.FitConfig(steps=300, device="cpu", progress=False, target_psnr=20.0)
    members = fit_many(crops, factory, config)
    assert [m.status for m in members] == ["target", "diverged", "target", "target"]
    for member in (members[0], members[3]):
        single = sequential(member, small("siren"), config)
        assert member.result.steps == single.steps
        assert member.result.history[-1]["loss"] == pytest.approx(single.history[-1]["loss"], rel=1e-4)


def test_stacked_siren_runs_as_one_node_with_autograds_gradients() -> None:
    """The fused SIREN body (written-out backward, cosines in place) computes what autograd through the
    per-layer twins computes: outputs, every parameter's gradient and the coordinates' gradient."""
    from inrkit.stacked import StackedMembers, StackedSineMLP

    torch.manual_seed(0)
    nets = [inrkit.create_model("siren", in_features=2, out_features=3, hidden_features=16, hidden_layers=2)
            for _ in range(3)]
    fused, plain = StackedMembers.build(nets), StackedMembers.build(nets, fuse=False)
    assert isinstance(fused.module.net, StackedSineMLP) and not isinstance(plain.module.net, StackedSineMLP)
    assert fused.shapes == plain.shapes  # same parameter names: state(), keep() and .inrz export are unchanged
    target = torch.rand(3, 50, 3)
    grads = []
    for stack in (fused, plain):
        coords = (torch.rand(50, 2, generator=torch.Generator().manual_seed(1)) * 2 - 1).requires_grad_()
        out = stack.forward(coords, 3)
        ((out - target) ** 2).mean((1, 2)).sum().backward()
        grads.append([out.detach(), coords.grad] + [p.grad for p in stack.params.values()])
    for got, want in zip(*grads):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-6 * want.abs().max())


def test_a_siren_stack_trains_without_autograd_with_autograds_losses_and_gradients() -> None:
    """`mse_step` (the fused body's MSE and gradients, no graph) gives what `member_losses` and backward
    through the per-layer twins give; a module that does more than its SIREN body keeps autograd."""
    from inrkit.members import member_losses
    from inrkit.stacked import StackedMembers

    torch.manual_seed(0)
    nets = [inrkit.create_model("siren", in_features=2, out_features=3, hidden_features=16, hidden_layers=2)
            for _ in range(3)]
    coords, target = torch.rand(50, 2) * 2 - 1, torch.rand(3, 50, 3)
    fused, plain = StackedMembers.build(nets), StackedMembers.build(nets, fuse=False)
    fused.find_body(coords, 3)
    plain.find_body(coords, 3)
    assert plain.mse_step(coords, target, 3) is None  # no fused body: the caller runs autograd
    losses = fused.mse_step(coords, target, 3)
    want = member_losses(plain.forward(coords, 3), target, "mse")
    want.sum().backward()
    assert torch.allclose(losses, want.detach(), rtol=1e-5)
    for got, ref in zip(fused.params.values(), plain.params.values()):
        assert torch.allclose(got.grad, ref.grad, rtol=1e-4, atol=1e-6 * ref.grad.abs().max())

    class Shifted(type(nets[0])):  # the body's output is not the module's
        def forward(self, coords: torch.Tensor) -> torch.Tensor:
            return super().forward(coords) + 1

    for net in nets:
        net.__class__ = Shifted
    shifted = StackedMembers.build(nets)
    shifted.find_body(coords, 3)
    assert shifted.mse_step(coords, target, 3) is None
