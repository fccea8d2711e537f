"""Recurrent state passed in and returned, never stored on a module; the one place where state is detached."""

from typing import NamedTuple

from torch import Tensor


class LSTMState(NamedTuple):
    """LSTM state in torch.nn.LSTM's layout.

    Attributes:
        h: hidden state, (L*D, B, H), or (L*D, B, P) with a projection; index layer * D + direction.
        c: cell state, (L*D, B, H).
    """

    h: Tensor
    c: Tensor


State = LSTMState | Tensor  # LSTMs carry (h, c); GRUs and plain RNNs carry h alone, (L*D, B, H)


def detach(state: State) -> State:
    """Cuts the graph behind a state carried across batches (truncated backpropagation through time)."""
    if isinstance(state, LSTMState):
        return LSTMState(state.h.detach(), state.c.detach())
    return state.detach()
