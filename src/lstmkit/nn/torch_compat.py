"""What makes the recurrent stacks drop-ins for torch.nn.LSTM / GRU / RNN beyond their maths: torch's argument
checks (its exception types and its warning), PackedSequence in and out, and the torch.nn module that stands in
for a stack under ``torch.jit.script``. The stacks themselves are in layer.py.
"""

import numbers
import warnings

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from ..errors import InvalidType, InvalidValue, LstmkitError

# torch.nn's name for each cell type (the ``mode`` attribute of its modules)
TORCH_MODES = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN_TANH"}
_TORCH_CLASSES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def check_dropout(dropout: object, num_layers: int) -> float:
    """torch's rule: a number in [0, 1] (not a bool), with a warning when there is no layer below another."""
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Number) or not 0 <= dropout <= 1:
        raise InvalidValue(f"dropout must be a number in [0, 1], got {dropout!r}")
    if dropout > 0 and num_layers == 1:
        warnings.warn(
            "dropout option adds dropout after all but last recurrent layer, so non-zero dropout expects "
            f"num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
            stacklevel=3,
        )
    return float(dropout)


def check_args(
    mode: str, input_size: object, hidden_size: object, num_layers: object, bias: object, batch_first: object,
    bidirectional: object, proj_size: object, recurrent_dropout: float, zoneout: float, layer_norm: bool,
) -> None:
    """torch.nn.RNNBase's checks, with its exception types (TypeError for a wrong type, ValueError for a wrong
    value), then lstmkit's own options."""
    for name, value in (("bias", bias), ("batch_first", batch_first), ("bidirectional", bidirectional),
                        ("layer_norm", layer_norm)):
        if not isinstance(value, bool):
            raise InvalidType(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers),
                        ("proj_size", proj_size)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidType(f"{name} must be an int, got {type(value).__name__} {value!r}")
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
        if value < 1:  # type: ignore[operator]
            raise InvalidValue(f"{name} must be a positive integer, got {value!r}")
    for name, value in (("recurrent_dropout", recurrent_dropout), ("zoneout", zoneout)):
        if isinstance(value, bool) or not isinstance(value, numbers.Number) or not 0.0 <= value < 1.0:
            raise InvalidValue(f"{name} must be in [0, 1), got {value}")
    if proj_size < 0 or (proj_size != 0 and proj_size >= hidden_size):  # type: ignore[operator]
        raise InvalidValue(f"proj_size must be 0 or between 1 and hidden_size - 1, got {proj_size}")
    for name, value in (("proj_size", proj_size), ("zoneout", zoneout), ("layer_norm", layer_norm)):
        if value and mode != "lstm":
            raise InvalidValue(f"{name} is only available for LSTM")


def unpack(x: PackedSequence, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
    """A PackedSequence as the right-padded batch (B, T, I) and its lengths (B,), in the caller's order."""
    if lengths is not None:
        raise LstmkitError("lengths cannot be given with a PackedSequence, which holds its own lengths")
    padded, lengths = pad_packed_sequence(x, batch_first=True)                 # (B, T, I), (B,)
    return padded, lengths


def repack(y: Tensor, like: PackedSequence, lengths: Tensor) -> PackedSequence:
    """The padded output y (B, T, D*H) packed as torch.nn.LSTM returns it: the input's order and indices."""
    order = like.sorted_indices
    sorted_y = y if order is None else y.index_select(0, order)
    sorted_lengths = lengths if order is None else lengths.index_select(0, order.cpu())
    packed = pack_padded_sequence(sorted_y, sorted_lengths.cpu(), batch_first=True, enforce_sorted=True)
    return PackedSequence(packed.data, packed.batch_sizes, like.sorted_indices, like.unsorted_indices)


def check_dtype(x: Tensor, weight: Tensor) -> None:
    """torch's check: an input in another dtype than the weights is refused (outside autocast), not cast."""
    if x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):
        raise InvalidValue(
            f"input dtype {x.dtype} does not match the weights' dtype {weight.dtype}: "
            f"convert the input (input.to({weight.dtype})) or the module (module.to({x.dtype}))"
        )


def as_torch_module(stack: nn.Module) -> nn.Module:
    """The torch.nn module that computes what ``stack`` computes, holding the same Parameter objects (not
    copies), for ``torch.jit.script``, which cannot compile lstmkit's Python dispatch. Only for stacks that
    torch.nn can express (no recurrent dropout, zoneout or layer norm)."""
    spec = stack.spec
    extra = [f for f in ("recurrent_dropout", "zoneout", "layer_norm") if getattr(spec, f)]
    if extra:
        raise InvalidValue(f"torch.jit.script needs a stack torch.nn can run, without {', '.join(extra)}")
    kwargs = {"proj_size": spec.proj_size} if spec.mode == "lstm" else {}
    first = stack._flat_weights[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the dropout warning was given when the stack was made
        module = _TORCH_CLASSES[spec.mode](
            spec.input_size, spec.hidden_size, spec.num_layers, bias=spec.bias, batch_first=stack.batch_first,
            dropout=spec.dropout, bidirectional=spec.bidirectional, device=first.device, dtype=first.dtype,
            **kwargs,
        )
    for name in module._flat_weights_names:
        setattr(module, name, getattr(stack, name))
    return module.train(stack.training)
