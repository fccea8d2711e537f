"""SequenceEncoder: (embedding | input features) -> recurrent stack. The backbone every task shares."""

from torch import Tensor, nn

from ..config import ModelConfig
from ..nn import GRU, LSTM, RNN, State

_STACKS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


class SequenceEncoder(nn.Module):
    """Embeds token ids (or takes feature vectors) and runs them through an LSTM, GRU or RNN stack.

    Args:
        config: the backbone's settings.
        vocab_size: embed token ids from a vocabulary of this size; or
        input_size: take (B, T, I) feature vectors directly.
    """

    def __init__(self, config: ModelConfig, *, vocab_size: int | None = None, input_size: int | None = None) -> None:
        super().__init__()
        if (vocab_size is None) == (input_size is None):
            raise ValueError("give exactly one of vocab_size and input_size")
        self.embedding = nn.Embedding(vocab_size, config.embed_dim) if vocab_size is not None else None
        self.rnn = _STACKS[config.cell](
            config.embed_dim if vocab_size is not None else input_size,
            config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            bidirectional=config.bidirectional,
            recurrent_dropout=config.recurrent_dropout,
            backend=config.backend,
            **({"zoneout": config.zoneout, "layer_norm": config.layer_norm} if config.cell == "lstm" else {}),
        )
        self.output_size = config.hidden_size * (2 if config.bidirectional else 1)

    def forward(self, x: Tensor, state: State | None = None, lengths: Tensor | None = None) -> tuple[Tensor, State]:
        """x: ids (B, T) or features (B, T, I) -> outputs (B, T, D*H) and the final state."""
        if self.embedding is not None:
            x = self.embedding(x)                     # (B, T, E)
        return self.rnn(x, state, lengths)            # (B, T, D*H)

    def step(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """One step: ids (B,) or features (B, I) -> the top layer's output (B, H) and the new state. An LSTM
        runs the whole stack in one call (LSTM.step); GRU and RNN stacks run a sequence of one step."""
        if self.embedding is not None:
            x = self.embedding(x)                     # (B, E)
        if isinstance(self.rnn, LSTM) and not self.rnn.spec.bidirectional:
            return self.rnn.step(x, state)
        y, state = self.rnn(x.unsqueeze(1), state)
        return y[:, 0], state
