"""LSTM gate maths: the four gates and the cell update, as pure functions.

Shape legend used across lstmkit:
    B batch, T time, I input features, H hidden units, P projection size,
    G=4 gates, L layers, D directions, V vocabulary, C classes.

Gates follow PyTorch's order along the 4H axis: input i, forget f, candidate g, output o
(Keras uses the same order, calling the candidate "c").
"""

from collections.abc import Callable

import torch
from torch import Tensor

GATE_ORDER = ("i", "f", "g", "o")


def split_gates(pre: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Splits pre-activations (..., 4H) into the i, f, g, o blocks, each (..., H)."""
    i, f, g, o = pre.chunk(4, dim=-1)
    return i, f, g, o


def input_gate(pre_i: Tensor) -> Tensor:
    """How much of the candidate enters the cell: i = sigmoid(pre_i)."""
    return torch.sigmoid(pre_i)


def forget_gate(pre_f: Tensor) -> Tensor:
    """How much of the previous cell survives: f = sigmoid(pre_f)."""
    return torch.sigmoid(pre_f)


def candidate(pre_g: Tensor) -> Tensor:
    """The new content proposed for the cell: g = tanh(pre_g)."""
    return torch.tanh(pre_g)


def output_gate(pre_o: Tensor) -> Tensor:
    """How much of the squashed cell is exposed as the hidden state: o = sigmoid(pre_o)."""
    return torch.sigmoid(pre_o)


def lstm_pointwise(
    pre: Tensor, c_prev: Tensor, cell_norm: Callable[[Tensor], Tensor] | None = None
) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor, Tensor, Tensor]]:
    """The elementwise half of an LSTM step.

    Args:
        pre: gate pre-activations W_ih x + b_ih + W_hh h_prev + b_hh, shape (B, 4H).
        c_prev: previous cell state, shape (B, H).
        cell_norm: optional normalisation of c before its tanh (the layer-normalised LSTM).

    Returns:
        h (B, H), c (B, H) and the activated gates (i, f, g, o), each (B, H).
    """
    pre_i, pre_f, pre_g, pre_o = split_gates(pre)  # each (B, H)
    i = input_gate(pre_i)                            # (B, H)
    f = forget_gate(pre_f)                           # (B, H)
    g = candidate(pre_g)                             # (B, H)
    o = output_gate(pre_o)                           # (B, H)
    c = f * c_prev + i * g                           # (B, H)
    h = o * torch.tanh(c if cell_norm is None else cell_norm(c))  # (B, H)
    return h, c, (i, f, g, o)
