"""One time step of each recurrent cell: the reference equations every backend is tested against.

Weights use torch.nn.LSTM / GRU / RNN layouts: W_ih (G*H, I), W_hh (G*H, H or P), biases (G*H,),
and for a projected LSTM W_hr (P, H). Shape legend in core/gates.py.
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .gates import lstm_pointwise


class CellWeights(NamedTuple):
    """The parameters of one layer in one direction (torch layouts)."""

    w_ih: Tensor             # (G*H, I)
    w_hh: Tensor             # (G*H, H) or (G*H, P) with projection
    b_ih: Tensor | None      # (G*H,)
    b_hh: Tensor | None      # (G*H,)
    w_hr: Tensor | None = None  # (P, H), LSTM projection only
    ln_ih: Tensor | None = None    # (G*H,) gain of the layer norm of W_ih x (layer-normalised LSTM only)
    ln_hh: Tensor | None = None    # (G*H,) gain of the layer norm of W_hh h
    ln_c_w: Tensor | None = None   # (H,) gain of the layer norm of c before its tanh
    ln_c_b: Tensor | None = None   # (H,) bias of that layer norm


class Zoneout(NamedTuple):
    """What fraction of each unit's previous cell and hidden state a step keeps (Krueger et al., 2016).

    While training these are 0/1 masks drawn per step, (B, H) and (B, H or P); in evaluation the keep
    probability itself (a float), so that the state is the expectation of the training-time one.
    """

    keep_c: Tensor | float
    keep_h: Tensor | float


def _affine(x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
    return x @ w.T if b is None else torch.addmm(b, x, w.T)


LAYER_NORM_EPS = 1e-5


def layer_norm(v: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Normalises v (..., N) over its last axis to zero mean and unit variance, then scales (and shifts)."""
    return F.layer_norm(v, v.shape[-1:], weight, bias, LAYER_NORM_EPS)


def lstm_step(
    x: Tensor,
    h_prev: Tensor,
    c_prev: Tensor,
    w: CellWeights,
    recurrent_mask: Tensor | None = None,
    zoneout: Zoneout | None = None,
) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor, Tensor, Tensor]]:
    """One LSTM step.

        i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of (W_ih x + b_ih + W_hh h_prev + b_hh)
        c = f * c_prev + i * g
        h = o * tanh(c)            (then h = W_hr h with a projection)

    With layer normalisation (Ba et al., 2016; w.ln_ih is set) the two products are normalised separately,
    pre = LN(W_ih x) + LN(W_hh h_prev) + b_ih + b_hh, and h = o * tanh(LN(c)). With zoneout each unit keeps
    its previous value with the given probability: c = keep_c * c_prev + (1 - keep_c) * c, and likewise h.

    Args:
        x: input (B, I). h_prev: (B, H) or (B, P). c_prev: (B, H).
        w: the layer's weights.
        recurrent_mask: optional variational dropout mask on h_prev, (B, H) or (B, P), already scaled.
        zoneout: optional Zoneout masks (training) or keep probabilities (evaluation).

    Returns:
        h (B, H or P), c (B, H) and the gate activations (i, f, g, o), each (B, H).
    """
    h_rec = h_prev if recurrent_mask is None else h_prev * recurrent_mask
    if w.ln_ih is None:
        pre = _affine(x, w.w_ih, w.b_ih) + _affine(h_rec, w.w_hh, w.b_hh)                      # (B, 4H)
    else:
        pre = layer_norm(x @ w.w_ih.T, w.ln_ih) + layer_norm(h_rec @ w.w_hh.T, w.ln_hh)         # (B, 4H)
        if w.b_ih is not None:
            pre = pre + w.b_ih + w.b_hh
    cell_norm = None if w.ln_c_w is None else (lambda c: layer_norm(c, w.ln_c_w, w.ln_c_b))
    h, c, gates = lstm_pointwise(pre, c_prev, cell_norm)                                      # (B, H), (B, H)
    if w.w_hr is not None:
        h = h @ w.w_hr.T                                                                     # (B, P)
    if zoneout is not None:
        c = zoneout.keep_c * c_prev + (1 - zoneout.keep_c) * c                              # (B, H)
        h = zoneout.keep_h * h_prev + (1 - zoneout.keep_h) * h                              # (B, H or P)
    return h, c, gates


def gru_step(x: Tensor, h_prev: Tensor, w: CellWeights, recurrent_mask: Tensor | None = None) -> Tensor:
    """One GRU step in torch's gate order r, z, n.

        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h = (1 - z) * n + z * h_prev
    """
    h_rec = h_prev if recurrent_mask is None else h_prev * recurrent_mask
    gi_r, gi_z, gi_n = _affine(x, w.w_ih, w.b_ih).chunk(3, dim=-1)      # each (B, H)
    gh_r, gh_z, gh_n = _affine(h_rec, w.w_hh, w.b_hh).chunk(3, dim=-1)  # each (B, H)
    r = torch.sigmoid(gi_r + gh_r)                                       # (B, H)
    z = torch.sigmoid(gi_z + gh_z)                                       # (B, H)
    n = torch.tanh(gi_n + r * gh_n)                                      # (B, H)
    return (1 - z) * n + z * h_prev                                      # (B, H)


def rnn_tanh_step(x: Tensor, h_prev: Tensor, w: CellWeights, recurrent_mask: Tensor | None = None) -> Tensor:
    """One plain (Elman) RNN step: h = tanh(W_ih x + b_ih + W_hh h_prev + b_hh), shape (B, H)."""
    h_rec = h_prev if recurrent_mask is None else h_prev * recurrent_mask
    return torch.tanh(_affine(x, w.w_ih, w.b_ih) + _affine(h_rec, w.w_hh, w.b_hh))
