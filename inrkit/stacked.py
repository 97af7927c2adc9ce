"""Stacked twins of a backbone's layers: M members' weights in one tensor, one batched matmul for all.

`StackedMembers.build` rebuilds a backbone once with every layer listed in `STACKABLE` replaced by its
twin (an `nn.Linear` by a `StackedLinear`: weights (M, out, in), bias (M, 1, out), `baddbmm` on
(M, N, in) activations); elementwise modules (sin, ReLU, Gaussian, Gabor...) run unchanged on
(M, N, D). It applies to every backbone whose parameters all live in such layers and whose other
buffers are equal across members; `inrkit.members` checks it against each member's own forward.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from .engine import compiled
from .models.fkan import FourierSeriesLayer
from .models.layers import GaussianFourierFeatures, ScaledLinear, SineLayer
from .models.sl2a import ChebyshevLayer, LowRankLinear
from .models.wire import ComplexLinear


class StackedLinear(nn.Module):
    """M Linear layers applied to (M, N, in) activations at once: baddbmm(bias, x, weight^T).

    Example:
        >>> layers = [nn.Linear(2, 4) for _ in range(3)]
        >>> StackedLinear(layers)(torch.zeros(3, 5, 2)).shape
        torch.Size([3, 5, 4])
    """

    def __init__(self, layers: Sequence[nn.Linear]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.stack([la.weight.detach() for la in layers]).contiguous())
        bias = [la.bias for la in layers]
        self.bias = None if bias[0] is None else nn.Parameter(torch.stack([b.detach()[None] for b in bias]))

    def forward(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:  # scale: as ScaledLinear's
        weight = (self.weight if scale == 1.0 else self.weight * scale).transpose(1, 2)
        if self.bias is None:
            return torch.bmm(x, weight)
        return torch.baddbmm(self.bias if scale == 1.0 else self.bias * scale, x, weight)


class StackedComplexLinear(nn.Module):
    """M of WIRE's complex Linear layers on [Re | Im] activations (M, N, 2 in), as real baddbmm."""

    def __init__(self, layers: Sequence[nn.Module]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.stack([la.weight.detach() for la in layers]).contiguous())
        self.bias = nn.Parameter(torch.stack([la.bias.detach()[None] for la in layers]))

    def forward(self, z: torch.Tensor, real_only: bool = False) -> torch.Tensor:
        w, b = torch.view_as_real(self.weight), torch.view_as_real(self.bias)  # (M, out, in, 2), (M, 1, out, 2)
        wr, wi = w[..., 0], w[..., 1]
        if real_only:
            return torch.baddbmm(b[..., 0], z, torch.cat([wr, -wi], dim=2).transpose(1, 2))
        block = torch.cat([torch.cat([wr, -wi], dim=2), torch.cat([wi, wr], dim=2)], dim=1)
        return torch.baddbmm(b.transpose(2, 3).flatten(2), z, block.transpose(1, 2))


class StackedFourierFeatures(nn.Module):
    """M random-Fourier-feature encodings whose fixed B differ by member (each member's own seed)."""

    def __init__(self, layers: Sequence[GaussianFourierFeatures]) -> None:
        super().__init__()
        self.register_buffer("B", torch.stack([la.B for la in layers]))
        self.out_features = layers[0].out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        proj = torch.bmm(x, self.B.transpose(1, 2)).mul_(2 * torch.pi)
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)


def _stacked(layers: Sequence[nn.Module], name: str, batch_shape: tuple[int, ...] = ()) -> nn.Parameter | None:
    if getattr(layers[0], name, None) is None:  # e.g. a LayerNorm without affine parameters
        return None
    return nn.Parameter(torch.stack([getattr(la, name).detach().reshape(*batch_shape, *getattr(la, name).shape)
                                     for la in layers]).contiguous())


class StackedLayerNorm(nn.Module):
    """M LayerNorms over the last dimension, each with its own affine weight and bias (M, 1, D)."""

    def __init__(self, layers: Sequence[nn.LayerNorm]) -> None:
        super().__init__()
        self.shape, self.eps = layers[0].normalized_shape, layers[0].eps
        self.weight, self.bias = _stacked(layers, "weight", (1,)), _stacked(layers, "bias", (1,))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x, self.shape, eps=self.eps)
        y = y if self.weight is None else y * self.weight
        return y if self.bias is None else y + self.bias


class StackedBasisLayer(nn.Module):
    """M layers of the form basis(x) @ W (+ b) whose basis has no parameters (FKAN's Fourier series, SL²A's
    Chebyshev layer): the basis runs once on (M, N, D), then one batched matmul."""

    def __init__(self, layers: Sequence[nn.Module]) -> None:
        super().__init__()
        self.kind = type(layers[0])
        self.register_buffer("k", layers[0].k, persistent=False)
        self.coefficients = _stacked(layers, "coefficients") if hasattr(layers[0], "coefficients") else None
        self.weight = None if self.coefficients is not None else _stacked(layers, "weight")
        self.bias = _stacked(layers, "bias", (1,)) if getattr(layers[0], "bias", None) is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        basis = self.kind.basis(self, x)
        weight = self.weight if self.coefficients is None else self.coefficients.permute(0, 1, 3, 2).flatten(1, 2)
        return torch.bmm(basis, weight) if self.bias is None else torch.baddbmm(self.bias, basis, weight)


class StackedLowRankLinear(nn.Module):
    """M of SL²A's low-rank layers x (P Q) + c as two batched matmuls."""

    def __init__(self, layers: Sequence[nn.Module]) -> None:
        super().__init__()
        self.P, self.Q, self.bias = _stacked(layers, "P"), _stacked(layers, "Q"), _stacked(layers, "bias", (1,))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, torch.bmm(x, self.P), self.Q)


NARROW = 16  # output layers narrower than this run transposed (M, C, N): a GEMM with C columns is slow


def _sine_forward(x: torch.Tensor, omegas: tuple[float, ...], params: Sequence[torch.Tensor]
                  ) -> tuple[torch.Tensor, tuple[list[torch.Tensor], ...]]:
    """The stacked SIREN body's output and what its backward needs: (inputs, pre-activations, weights)."""
    inputs, pre = [x], []
    for i, omega in enumerate(omegas):
        weight, bias = params[2 * i], params[2 * i + 1]
        pre.append(torch.baddbmm(bias, inputs[-1], weight.transpose(1, 2), beta=omega, alpha=omega))
        inputs.append(torch.sin(pre[-1]))
    weight, bias = params[-2], params[-1]
    if weight.shape[1] < NARROW:  # (M, C, N) then viewed as (M, N, C): 2-3x faster for an RGB output
        out = torch.baddbmm(bias.transpose(1, 2), weight, inputs[-1].transpose(1, 2)).transpose(1, 2)
    else:
        out = torch.baddbmm(bias, inputs[-1], weight.transpose(1, 2))
    return out, (inputs, pre, list(params[0::2]))


def _weight_grad(grad: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """grad^T inputs per member; coordinates shared by every member (an expanded view) take one matmul."""
    if inputs.stride(0) == 0:
        return torch.matmul(inputs[0].T, grad).transpose(1, 2).contiguous()
    return torch.bmm(grad.transpose(1, 2), inputs)


def _sine_backward(saved: tuple[Sequence[torch.Tensor], ...], omegas: tuple[float, ...], grad: torch.Tensor,
                   input_grad: bool) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
    """(gradient of the input or None, gradients of the parameters) from the output's gradient; the
    pre-activations' buffers are overwritten (each turns into its cosine, then its gradient)."""
    inputs, pre, weights = saved
    n, grads = len(omegas), []
    for layer in range(n, -1, -1):
        if layer < n:  # through the sine: d sin(z) = cos(z) dz, in the buffer z was saved in
            grad = torch.cos(pre[layer], out=pre[layer]).mul_(grad)
        # `grad` is the gradient of z = omega (W a + b) times omega: the weight, bias and input gradients all
        # carry that omega, so the layer above folded it into its small weight product
        grads[:0] = [_weight_grad(grad, inputs[layer]), grad.sum(1, keepdim=True)]
        if layer > 0:
            grad = torch.bmm(grad, weights[layer] * omegas[layer - 1])
        elif input_grad:
            grad = torch.bmm(grad, weights[layer])
    return (grad if input_grad else None), grads


class _SineMLP(torch.autograd.Function):
    """Stacked sine layers and their linear output layer as one autograd node, with a written-out backward.

    Same arithmetic as autograd through `SineLayer`s (the frequency scales the weights and bias, as
    `ScaledLinear` does), but one node per group instead of five per layer, and the backward reuses
    each saved pre-activation for its cosine and then its gradient instead of allocating both anew:
    on small stacked fields, where the elementwise passes cost as much as the matmuls, that is what
    the step spends its time on (`benchmarks/results/batched.md`).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, omegas: tuple[float, ...], *params: torch.Tensor) -> torch.Tensor:
        out, (inputs, pre, weights) = _sine_forward(x, omegas, params)
        ctx.omegas = omegas
        ctx.save_for_backward(*inputs, *pre, *weights)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        n, saved = len(ctx.omegas), ctx.saved_tensors
        parts = saved[:n + 1], saved[n + 1:2 * n + 1], saved[2 * n + 1:]
        grad_x, grads = _sine_backward(parts, ctx.omegas, grad, ctx.needs_input_grad[0])
        return (grad_x, None, *grads)


class StackedSineMLP(nn.Sequential):
    """A stacked SIREN body (sine layers, then a linear layer) computed by `_SineMLP`; same children and
    parameter names as the `nn.Sequential` it replaces."""

    def _parts(self) -> tuple[tuple[float, ...], list[nn.Parameter]]:
        *sines, last = self
        params = [t for layer in (*(s.linear for s in sines), last) for t in (layer.weight, layer.bias)]
        return tuple(s.omega_0 for s in sines), params

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        omegas, params = self._parts()
        return _SineMLP.apply(x, omegas, *params)

    def mse_step(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Each member's mean squared error (M,), its parameters' gradients accumulated into `.grad`, without
        autograd: the same arithmetic as `member_losses(self(x), targets, "mse")` then backward, but no
        graph, and the error turns into its gradient in place. 64 SIREN 3x32 members on 32² crops train
        in 5.80 s this way against 6.72 s through autograd (`batched.py direct`, results/batched.md)."""
        omegas, params = self._parts()
        with torch.no_grad():
            out, saved = _sine_forward(x, omegas, params)
            error = out.sub_(targets)
            losses = error.square().mean(tuple(range(1, error.dim())))
            _, grads = _sine_backward(saved, omegas, error.mul_(2 / error[0].numel()), input_grad=False)
        for param, grad in zip(params, grads):
            param.grad = grad if param.grad is None else param.grad.add_(grad)
        return losses


def _is_stacked_sine_mlp(module: nn.Module) -> bool:
    *sines, last = list(module.children()) or [None]
    linears = [getattr(s, "linear", None) for s in sines] + [last]
    return (type(module) is nn.Sequential and len(sines) > 0 and all(type(s) is SineLayer for s in sines)
            and all(type(la) is StackedLinear and la.bias is not None for la in linears))


# Layers with parameters (or per-member buffers) that have a stacked twin; anything else must be elementwise
# (or fail the check against the members' own forward, and run under vmap).
STACKABLE: dict[type, Callable[[Sequence[nn.Module]], nn.Module]] = {
    nn.Linear: StackedLinear,
    ScaledLinear: StackedLinear,
    nn.LayerNorm: StackedLayerNorm,
    ComplexLinear: StackedComplexLinear,
    GaussianFourierFeatures: StackedFourierFeatures,
    FourierSeriesLayer: StackedBasisLayer,
    ChebyshevLayer: StackedBasisLayer,
    LowRankLinear: StackedLowRankLinear,
}


def _fuse_sine_mlps(module: nn.Module) -> nn.Module:
    """`module` with every stacked SIREN body replaced by its one-node twin (names unchanged)."""
    if _is_stacked_sine_mlp(module):
        return StackedSineMLP(OrderedDict(module._modules))
    for name, child in list(module.named_modules()):
        if name and _is_stacked_sine_mlp(child):
            _assign(module, name, StackedSineMLP(OrderedDict(child._modules)))
    return module


def _assign(root: nn.Module, dotted: str, value: nn.Module | torch.Tensor) -> None:
    owner, _, leaf = dotted.rpartition(".")
    module = root.get_submodule(owner) if owner else root
    if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter) and leaf in module._buffers:
        module._buffers[leaf] = value
    else:
        setattr(module, leaf, value)


class StackedMembers:
    """One module computing every member: stacked twins of its layers, elementwise modules as they are."""

    kind = "stacked"

    def __init__(self, module: nn.Module, shapes: dict[str, torch.Size]) -> None:
        self.module, self.shapes = module, shapes  # shapes: each stacked tensor's shape in one member
        self.run: Callable[[torch.Tensor], torch.Tensor] = module
        self.body: StackedSineMLP | None = None  # set by `find_body`: the module's whole computation

    def compile(self) -> None:
        """Run the stacked module through `torch.compile` (eager again, with a warning, if compiling fails)."""
        self.run = compiled(self.module, dynamic=None)

    @classmethod
    def build(cls, nets: Sequence[nn.Module], fuse: bool = True) -> StackedMembers | None:
        """The stacked module, or None when a parameter or per-member buffer lives in a layer it cannot stack.

        `fuse`: SIREN bodies become one `StackedSineMLP` node (off for `torch.compile`, which fuses itself).
        """
        module = copy.deepcopy(nets[0])
        per_member = [dict(n.named_modules()) for n in nets]
        twins = {name: type(m) for name, m in nets[0].named_modules() if type(m) in STACKABLE}
        for name, kind in twins.items():
            if any(name.startswith(other + ".") for other in twins):
                continue
            layers = [mods[name] for mods in per_member]
            if any(type(la) is not kind for la in layers):
                return None
            if not name:  # the whole network is one layer: nothing to walk, vmap is as good
                return None
            _assign(module, name, STACKABLE[kind](layers))
        if fuse:
            module = _fuse_sine_mlps(module)
        stacked = {f"{n}.{k}" for n in twins for k, _ in nets[0].get_submodule(n).state_dict().items()}
        reference = [n.state_dict() for n in nets]
        for name, value in reference[0].items():
            if name not in stacked and any(not torch.equal(value, r[name]) for r in reference[1:]):
                return None  # a per-member tensor outside a layer we can stack
        for name, p in nets[0].named_parameters():
            if name not in stacked and p.requires_grad:
                return None
        return cls(module, {k: reference[0][k].shape for k in stacked})

    @property
    def params(self) -> dict[str, nn.Parameter]:
        return {k: p for k, p in self.module.named_parameters() if k in self.shapes}

    def forward(self, coords: torch.Tensor, members: int) -> torch.Tensor:
        if coords.dim() == 2:  # coordinates shared by every member
            coords = coords.expand(members, *coords.shape)
        return self.run(coords)

    def find_body(self, probe: torch.Tensor, members: int) -> None:
        """Let `mse_step` train without autograd when the module is a fused SIREN body and nothing else:
        its one `StackedSineMLP` gives the module's own output, bit for bit, on `probe`."""
        bodies = [m for m in self.module.modules() if isinstance(m, StackedSineMLP)]
        if len(bodies) == 1 and self.run is self.module:
            x = probe.expand(members, *probe.shape)
            with torch.no_grad():
                self.body = bodies[0] if torch.equal(self.module(x), bodies[0](x)) else None

    def mse_step(self, coords: torch.Tensor, targets: torch.Tensor, members: int) -> torch.Tensor | None:
        """`StackedSineMLP.mse_step` where `find_body` found one (the losses, gradients in `.grad`); else None."""
        if self.body is None:
            return None
        return self.body.mse_step(coords.expand(members, *coords.shape) if coords.dim() == 2 else coords, targets)

    def keep(self, index: torch.Tensor) -> dict[str, nn.Parameter]:
        """Keep the members at `index`; returns {name: new parameter} in the order of `params`."""
        new = {}
        for name, tensor in list(self.module.state_dict(keep_vars=True).items()):
            if name not in self.shapes:
                continue
            value = tensor.detach()[index]
            if isinstance(tensor, nn.Parameter):
                value = nn.Parameter(value, requires_grad=tensor.requires_grad)
                new[name] = value
            _assign(self.module, name, value)
        return new

    def state(self, row: int) -> dict[str, torch.Tensor]:
        """Member `row`'s stacked tensors in its own module's shapes."""
        full = self.module.state_dict()
        return {k: full[k][row].reshape(shape) for k, shape in self.shapes.items()}
