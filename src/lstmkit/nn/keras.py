"""Import of Keras LSTM weights into the torch layout.

Keras stores a layer as ``kernel`` (I, 4H), ``recurrent_kernel`` (H, 4H) and ``bias`` (4H,), with gates in
the order i, f, c, o, which is torch's i, f, g, o. So the import is a transpose; Keras's single bias becomes
``bias_ih`` and ``bias_hh`` is zero.
"""

from collections.abc import Sequence

import numpy as np
import torch

from ..errors import LstmkitError
from .layer import LSTM

KerasLayerWeights = Sequence[np.ndarray]  # [kernel, recurrent_kernel] or [kernel, recurrent_kernel, bias]


def keras_lstm_weights(kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray | None = None) -> dict:
    """Converts one Keras LSTM layer's arrays to torch-layout tensors keyed weight_ih, weight_hh, bias_ih, bias_hh."""
    kernel, recurrent_kernel = np.asarray(kernel), np.asarray(recurrent_kernel)
    gates = kernel.shape[1]
    hidden = gates // 4
    if gates != 4 * hidden or recurrent_kernel.shape != (hidden, gates):
        raise LstmkitError(
            f"Keras LSTM weights do not fit together: kernel {kernel.shape}, recurrent_kernel "
            f"{recurrent_kernel.shape}; expected (I, 4H) and (H, 4H)"
        )
    out = {
        "weight_ih": torch.from_numpy(np.ascontiguousarray(kernel.T, dtype=np.float32)),
        "weight_hh": torch.from_numpy(np.ascontiguousarray(recurrent_kernel.T, dtype=np.float32)),
    }
    if bias is not None:
        bias = np.asarray(bias, dtype=np.float32)
        if bias.shape != (gates,):
            raise LstmkitError(f"Keras LSTM bias has shape {bias.shape}, expected ({gates},)")
        out["bias_ih"] = torch.from_numpy(bias.copy())
        out["bias_hh"] = torch.zeros(gates)
    return out


@torch.no_grad()
def load_keras_lstm(lstm: LSTM, layers: Sequence[KerasLayerWeights]) -> LSTM:
    """Copies Keras LSTM weights into ``lstm``, layer by layer.

    Args:
        lstm: the target; its sizes must match.
        layers: one entry per layer and direction, in the order layer 0 forward, [layer 0 backward], layer 1
            forward, ...; each entry is what ``keras_layer.get_weights()`` returns for an LSTM layer (a Keras
            Bidirectional layer returns forward then backward arrays: split it in two entries).

    Returns:
        ``lstm``, for chaining.
    """
    spec = lstm.spec
    expected = spec.num_layers * spec.num_directions
    if len(layers) != expected:
        raise LstmkitError(
            f"got Keras weights for {len(layers)} layers, this LSTM has {expected} (layers x directions)"
        )
    if spec.proj_size:
        raise LstmkitError("Keras LSTMs have no projection; use proj_size=0")
    for idx, arrays in enumerate(layers):
        converted = keras_lstm_weights(*arrays)
        names = lstm._weight_names[idx]
        for role, tensor in converted.items():
            if role not in names:
                raise LstmkitError("the Keras layer has a bias but this LSTM was built with bias=False")
            target = getattr(lstm, names[role])
            if target.shape != tensor.shape:
                raise LstmkitError(
                    f"Keras {role} for layer entry {idx} has shape {tuple(tensor.shape)}, "
                    f"this LSTM expects {tuple(target.shape)}"
                )
            target.copy_(tensor)
        if "bias_ih" in names and "bias_ih" not in converted:
            raise LstmkitError("the Keras layer has no bias but this LSTM was built with bias=True")
    return lstm
