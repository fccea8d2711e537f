"""lstmkit.Linear: torch.nn.Linear's results and gradients, its large float32 CPU products on the extension's
kernel, everything else on F.linear."""

import pytest
import torch
import torch.nn.functional as F

import lstmkit
from lstmkit.backends import dense, extension

needs_extension = pytest.mark.skipif(extension.load() is None, reason="the C++ extension cannot be built here")


def _grads(fn, x, layer, g):
    y = fn(x)
    params = [x, layer.weight] + ([layer.bias] if layer.bias is not None else [])
    return (y, *torch.autograd.grad(y, params, g))


@needs_extension
@pytest.mark.parametrize("seed", range(6))
def test_outputs_and_gradients_match_f_linear_on_random_shapes(seed):
    gen = torch.Generator().manual_seed(seed)
    rows = int(torch.randint(40, 700, (1,), generator=gen))
    n_in = int(torch.randint(1, 700, (1,), generator=gen))
    n_out = int(torch.randint(1, 3000, (1,), generator=gen))
    lead = (rows,) if seed % 2 else (rows // 20 + 1, 20)  # (N, in) and (B, T, in)
    layer = lstmkit.Linear(n_in, n_out, bias=seed != 3)
    x = torch.randn(*lead, n_in, generator=gen, requires_grad=True)
    if x.numel() * n_out < dense.MIN_MACS:  # keep every case on the extension's path
        x = torch.randn(256, 20, n_in, generator=gen, requires_grad=True)
    assert dense.applies(x, layer.weight)
    g = torch.randn(*x.shape[:-1], n_out, generator=gen)
    ours = _grads(layer, x, layer, g)
    ref = _grads(lambda v: F.linear(v, layer.weight, layer.bias), x, layer, g)
    for a, b in zip(ours, ref, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * (1 + b.abs().max().item()))


@needs_extension
def test_strided_inputs_and_gradients_and_frozen_parameters():
    layer = lstmkit.Linear(300, 2000)
    layer.weight.requires_grad_(False)
    x = torch.randn(40, 600)[:, ::2].requires_grad_(True)      # (40, 300), column stride 2
    assert dense.applies(x, layer.weight)
    y = layer(x)
    y.sum().backward()                                          # dy: one value, expanded (stride 0)
    torch.testing.assert_close(y, F.linear(x, layer.weight, layer.bias), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(x.grad, layer.weight.sum(0).expand(40, 300), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(layer.bias.grad, torch.full((2000,), 40.0))
    assert layer.weight.grad is None


@needs_extension
def test_double_backward_is_refused_rather_than_wrong():
    layer = lstmkit.Linear(300, 2000)
    x = torch.randn(40, 300, requires_grad=True)
    (dx,) = torch.autograd.grad(layer(x).pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        dx.sum().backward()


def test_small_products_other_dtypes_and_autocast_stay_on_torch():
    layer = lstmkit.Linear(50, 1)
    assert not dense.applies(torch.randn(32, 50), layer.weight)             # W3's head: too small
    big = lstmkit.Linear(300, 2000)
    x = torch.randn(40, 300)
    assert not dense.applies(x.double(), big.weight.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not dense.applies(x, big.weight)
        assert big(x).dtype == torch.bfloat16                                 # autocast still applies


def test_is_a_torch_linear_with_the_same_state_dict():
    torch.manual_seed(0)
    ours = lstmkit.Linear(8, 3)
    torch.manual_seed(0)
    theirs = torch.nn.Linear(8, 3)
    assert isinstance(ours, torch.nn.Linear)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    for key in theirs.state_dict():
        assert torch.equal(ours.state_dict()[key], theirs.state_dict()[key])
