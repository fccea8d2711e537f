"""Single-step cells with torch.nn.LSTMCell / GRUCell / RNNCell parameter names, running core.step."""

import torch
from torch import Tensor, nn

from ..core import init
from ..core.step import CellWeights, gru_step, lstm_step, rnn_tanh_step
from .state import LSTMState


class _Cell(nn.Module):
    num_gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        gates = self.num_gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(gates, input_size))
        self.weight_hh = nn.Parameter(torch.empty(gates, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(gates)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(gates)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in self.parameters():
            init.uniform_(p, self.hidden_size)

    def weights(self) -> CellWeights:
        return CellWeights(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)

    def _zeros(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape[0], self.hidden_size)


class LSTMCell(_Cell):
    """One LSTM step: ``forward(x (B, I), state=None) -> LSTMState(h (B, H), c (B, H))``.

    The forget-gate bias starts at 1 (Keras's unit_forget_bias) unless ``unit_forget_bias=False``.
    """

    num_gates = 4

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, unit_forget_bias: bool = True) -> None:
        self.unit_forget_bias = unit_forget_bias
        super().__init__(input_size, hidden_size, bias)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.unit_forget_bias and self.bias_ih is not None:
            init.lstm_bias_(self.bias_ih, self.bias_hh)

    def forward(self, x: Tensor, state: LSTMState | None = None) -> LSTMState:
        h_prev, c_prev = (self._zeros(x), self._zeros(x)) if state is None else state
        h, c, _ = lstm_step(x, h_prev, c_prev, self.weights())
        return LSTMState(h, c)


class GRUCell(_Cell):
    """One GRU step: ``forward(x (B, I), h=None) -> h (B, H)``."""

    num_gates = 3

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        return gru_step(x, self._zeros(x) if h is None else h, self.weights())


class RNNCell(_Cell):
    """One plain tanh RNN step: ``forward(x (B, I), h=None) -> h (B, H)``."""

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        return rnn_tanh_step(x, self._zeros(x) if h is None else h, self.weights())
