"""The torch backend: PyTorch's own fused RNN kernels (cuDNN on CUDA, oneDNN on CPU).

It calls the same operator torch.nn.LSTM / GRU / RNN call, with our parameters, so results match
torch.nn modules holding the same weights. Variable lengths go through a packed sequence.
"""

import torch
from torch import _VF, Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..core.step import CellWeights
from .spec import StackSpec

NAME = "torch"
MODES = ("lstm", "gru", "rnn")
# torch.nn's own options; recurrent dropout, zoneout and layer norm are not among them
FEATURES = frozenset({"bias", "dropout", "bidirectional", "proj_size"})
PURPOSES = frozenset({"run"})  # the kernels keep no gates, and have no one-step entry
_OPS = {"lstm": _VF.lstm, "gru": _VF.gru, "rnn": _VF.rnn_tanh}


def unsupported(
    spec: StackSpec, *, device: torch.device, dtype: torch.dtype, training: bool, purpose: str
) -> str | None:
    """Why torch's kernels cannot run the configuration beyond what MODES and FEATURES say, or None: they run
    every device and dtype torch.nn.LSTM does."""
    return None


def _flat(weights: list[CellWeights]) -> list[Tensor]:
    flat: list[Tensor] = []
    for w in weights:
        flat += [w.w_ih, w.w_hh]
        if w.b_ih is not None:
            flat += [w.b_ih, w.b_hh]
        if w.w_hr is not None:
            flat.append(w.w_hr)
    return flat


def run(
    spec: StackSpec,
    x: Tensor,
    state: tuple[Tensor, ...],
    weights: list[CellWeights],
    lengths: Tensor | None,
    training: bool,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Same contract as backends.reference.run (without traces)."""
    op = _OPS[spec.mode]
    flat = _flat(weights)
    hx: Tensor | tuple[Tensor, ...] = state if spec.mode == "lstm" else state[0]
    common = (flat, spec.bias, spec.num_layers, spec.dropout, training, spec.bidirectional)
    if lengths is None:
        y, *final = op(x, hx, *common, True)                                    # batch_first=True
        return y, tuple(final)
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    order, unorder = packed.sorted_indices, packed.unsorted_indices
    hx_sorted = tuple(s[:, order] for s in state)
    hx = hx_sorted if spec.mode == "lstm" else hx_sorted[0]
    y_data, *final = op(packed.data, packed.batch_sizes, hx, *common)
    y, _ = pad_packed_sequence(
        packed._replace(data=y_data), batch_first=True, total_length=x.shape[1]
    )                                                                             # (B, T, D*(H or P))
    return y, tuple(s[:, unorder] for s in final)
