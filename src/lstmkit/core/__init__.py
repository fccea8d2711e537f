"""The recurrent equations, written once as plain functions (no modules, no devices)."""

from .gates import GATE_ORDER, lstm_pointwise, split_gates
from .step import CellWeights, Zoneout, gru_step, lstm_step, rnn_tanh_step

__all__ = [
    "GATE_ORDER",
    "CellWeights",
    "Zoneout",
    "gru_step",
    "lstm_pointwise",
    "lstm_step",
    "rnn_tanh_step",
    "split_gates",
]
