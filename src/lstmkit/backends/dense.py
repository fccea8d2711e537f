"""The products of a dense layer (lstmkit.nn.Linear) on the fused backend's matrix kernel.

A word-level language model's decoder, a Dense layer over the vocabulary, is a product as large as its
LSTM: about half of a training step's arithmetic. On float32 CPU tensors the C++ extension's cache-tiled
kernel (the one the fused LSTM's all-step products use) runs those three products, y = x W^T, dx = dy W and
dW = dy^T x, faster than nn.Linear on such heads (benchmarks/bench_dense.py measures it). ``applies`` says
where it is used; everywhere else Linear is torch's F.linear, unchanged.
"""

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from . import extension

# Products smaller than this (rows x inputs x outputs multiply-adds) stay with torch: below it the call's
# fixed cost is a visible share, and at::mm is the faster of the two on tiny heads.
MIN_MACS = 1 << 22


def applies(x: Tensor, weight: Tensor) -> bool:
    """Whether Linear runs x (..., in) @ weight (out, in)^T on the extension: float32 on the CPU, outside
    autocast (whose bf16 products F.linear keeps), tracing and compiling, large enough, and the extension
    built."""
    if x.numel() * weight.shape[0] < MIN_MACS:  # rows x in x out; first, as the cheapest test
        return False
    if x.device.type != "cpu" or x.dtype != torch.float32 or weight.dtype != torch.float32:
        return False
    if torch.is_autocast_enabled("cpu") or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return False
    return extension.load() is not None


class _Linear(torch.autograd.Function):
    """x2 (N, in), weight (out, in), bias (out,) or None -> x2 @ weight^T + bias (N, out)."""

    @staticmethod
    def forward(ctx, x2: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        y = extension.load().dense_matmul(x2, weight.t())  # (N, out)
        if bias is not None:
            y.add_(bias)
        ctx.save_for_backward(x2, weight)
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy: Tensor):
        x2, weight = ctx.saved_tensors
        ext = extension.load()
        need_x, need_w, need_b = ctx.needs_input_grad
        dx = ext.dense_matmul(dy, weight) if need_x else None        # (N, in)
        dw = ext.dense_weight_grad(dy, x2) if need_w else None       # (out, in)
        db = dy.sum(0) if need_b and ctx.has_bias else None           # (out,)
        return dx, dw, db


def linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """F.linear's result and gradients, computed by the extension; call where ``applies`` holds."""
    y = _Linear.apply(x.reshape(-1, x.shape[-1]), weight, bias)
    return y.view(*x.shape[:-1], weight.shape[0])
