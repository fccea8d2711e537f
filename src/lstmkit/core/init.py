"""Parameter initialisers for the recurrent layers."""

import math

import torch
from torch import Tensor


@torch.no_grad()
def uniform_(weight: Tensor, hidden_size: int) -> Tensor:
    """torch.nn.LSTM's default: U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / math.sqrt(hidden_size)
    return weight.uniform_(-bound, bound)


@torch.no_grad()
def lstm_bias_(b_ih: Tensor, b_hh: Tensor, forget_bias: float = 1.0) -> None:
    """Keras's ``unit_forget_bias``: all biases zero except the forget gate, whose total bias is ``forget_bias``.

    The forget block is the second quarter of the 4H axis (gate order i, f, g, o). Only b_ih carries it,
    so b_ih + b_hh equals Keras's single bias vector.
    """
    hidden = b_ih.shape[0] // 4
    b_ih.zero_()
    b_hh.zero_()
    b_ih[hidden : 2 * hidden] = forget_bias
