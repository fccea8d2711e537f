"""lstmkit: Long Short-Term Memory networks for the jobs people use them for, on PyTorch."""

from .backends import BACKEND_NAMES, BackendUnsupported
from .errors import LstmkitError
from .nn import (
    GRU,
    LSTM,
    RNN,
    GRUCell,
    Linear,
    LSTMCell,
    LSTMState,
    LSTMTrace,
    RNNCell,
    detach,
    keras_lstm_weights,
    load_keras_lstm,
)

__version__ = "0.1.0"

__all__ = [
    "BACKEND_NAMES",
    "GRU",
    "LSTM",
    "RNN",
    "BackendUnsupported",
    "GRUCell",
    "LSTMCell",
    "LSTMState",
    "LSTMTrace",
    "Linear",
    "LstmkitError",
    "RNNCell",
    "__version__",
    "detach",
    "keras_lstm_weights",
    "load_keras_lstm",
]
