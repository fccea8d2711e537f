"""lstmkit: Long Short-Term Memory networks for the jobs people use them for, on PyTorch."""

from pathlib import Path
from typing import Any

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


def load(path: str | Path) -> Any:
    """Loads any run folder as its task's predictor (``.predict(...)``, ``.model``, ``.config``, ``.metrics``),
    whichever task made it (config.json says).

    Example:
        >>> run = lstmkit.load("runs/airline")
        >>> run.predict("airline-passengers.csv")
    """
    from .tasks.registry import load as load_run

    return load_run(path)

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
    "load",
    "load_keras_lstm",
]
