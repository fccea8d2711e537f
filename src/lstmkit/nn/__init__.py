"""User-facing recurrent modules."""

from . import sampling
from .cell import GRUCell, LSTMCell, RNNCell
from .keras import keras_lstm_weights, load_keras_lstm
from .layer import GRU, LSTM, RNN, LSTMTrace
from .linear import Linear
from .state import LSTMState, State, detach
from .time_distributed import TimeDistributed

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "GRUCell",
    "LSTMCell",
    "LSTMState",
    "LSTMTrace",
    "Linear",
    "RNNCell",
    "State",
    "TimeDistributed",
    "detach",
    "keras_lstm_weights",
    "load_keras_lstm",
    "sampling",
]
